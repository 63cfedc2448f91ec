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
//! `store` is the bottom layer: a local directory and an S3 prefix behind one small interface
//! (list, capped get, atomic and conditional put, delete), with the S3 client, its retries and
//! the byte budget; `sink` (the output tree, and `sink::notify`, which publishes each Insight
//! record new to the output, once, to EventBridge, SNS or a webhook), `state` (what a nightly run remembers, and its
//! lock) and the log `source` all go through it. `model` is the shared vocabulary; `cli` and
//! `config` turn arguments into a validated run; `pipeline` owns every task and decides when
//! things happen; `telemetry` owns logs, progress and the run summary (it reports, never
//! decides). `report` draws the sink's output (and, for its charts, the logs read again) as one
//! HTML page; the pipeline drives it.

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
pub mod stop;
pub mod store;
pub mod telemetry;
