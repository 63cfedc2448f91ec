//! trailsight's integration tests: one binary, one module per concern.

mod aws_format;
mod bad_input;
mod deploy;
mod end_to_end;
mod incremental;
mod layout;
mod real_data;
mod report;
mod support;
mod telemetry;
