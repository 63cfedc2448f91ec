//! trailsight's integration tests: one binary, one module per concern.

mod activities;
mod aws_format;
mod bad_input;
mod cli;
mod deploy;
mod end_to_end;
mod fuzz;
mod fuzz_report;
mod hostile;
mod incremental;
mod layout;
mod notify;
mod parquet_output;
mod real_data;
mod report;
mod report_hostile;
mod report_walk_hostile;
mod s3;
mod s3_server;
mod schemas;
mod security;
mod support;
mod telemetry;
mod unattended;
