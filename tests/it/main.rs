//! trailsight's integration tests: one binary, one module per concern.

mod aws_format;
mod bad_input;
mod end_to_end;
mod layout;
mod real_data;
mod s3;
mod s3_server;
mod support;
