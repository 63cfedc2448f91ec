//! trailsight: CloudTrail Insights, offline.
//!
//! Reads CloudTrail log files as AWS delivers them, counts write management calls and errors per
//! minute for every account, region and API, compares each minute with the 7 days before it, and
//! writes Start/End Insight events exactly as CloudTrail Insights does, and the same records as
//! Hive-partitioned Parquet for Athena (`sink::parquet`).
//!
//! ```text
//!  source ──► decode ──► aggregate ──► detect ──► sink
//!  list day   gunzip,    per-minute    baseline,  AWS Insight JSON
//!  folders,   parse,     counts and    episodes,  (CloudTrail-Insight/
//!  fetch      classify   attributions  records    layout)
//!  └───────────── pipeline: bounded fetches, decoding on CPU threads ─────────────┘
//! ```
//!
//! The source is a local directory or an S3 bucket (`source::s3`, the only module that uses the
//! AWS SDK for S3; the sink writes S3 output through it). `sink::notify` publishes each Insight
//! record new to the output, once, to EventBridge, SNS or a webhook. `model` is the shared vocabulary; `cli` and
//! `config` turn arguments into a validated run; `telemetry` owns logs, progress and the run
//! summary. `report` reads the sink's output back (and, for its charts, the logs again through
//! `source` and `decode`) into one HTML page.

pub mod aggregate;
pub mod cli;
pub mod config;
pub mod decode;
pub mod detect;
pub mod model;
pub mod pipeline;
pub mod report;
pub mod sink;
pub mod source;
pub mod state;
pub mod telemetry;
