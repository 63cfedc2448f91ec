//! trailsight-gen: a deterministic, realistic CloudTrail archive generator.
//!
//! It writes what a trail delivers to S3 (gzip `{"Records":[...]}` files in the
//! `AWSLogs/[o-org/]ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/` layout, plus `CloudTrail-Digest/`
//! siblings a reader must skip) and an `anomalies.json` with the injected Insights-style
//! anomalies, so trailsight's detector can be tested and evaluated offline.
//!
//! # Data flow
//!
//! ```text
//! cli ──> config ──> run (threads) ──> stream (one account x region, minute by minute)
//!                                        traffic   how many calls per API this minute
//!                                        identity  who calls (roster of principals)
//!                                        errors    background failures
//!                                        routine   eval only: bursty automation, sessions
//!                                        anomaly   injected bursts / scripted history
//!                                        record    CloudTrail JSON (payload, inventory)
//!                                        delivery  which tick (file) each record lands in
//!                                        sink      gzip + write (layout names the keys)
//!                    run ──> anomalies.json (labels with observed baselines)
//!                            series.json    (eval only: events per series and day)
//! ```
//!
//! `--preset eval` adds the routines of [`routine`] to the traffic model and places the
//! labelled scenarios of [`scenario`]; `docs/evaluation.md` describes how they are scored.
//!
//! # Traffic model
//!
//! Per stream (account x region) and per minute, each catalogued API gets a Poisson number of
//! calls around its rate (see [`traffic`]): office-hours APIs follow a business-day bell in the
//! account's own timezone and drop to a fifth on weekends; machine APIs run around the clock with
//! a mild daytime bump; sparse write APIs (RunInstances, AuthorizeSecurityGroupIngress, IAM
//! changes) are called a few times a week at any hour; scheduled automation fires fixed numbers
//! of calls at fixed local minutes (nightly snapshots, weekday deploy pipelines, scaling
//! schedules). Each call gets a principal drawn from the API's caller classes (console users,
//! CLI users, CI/terraform roles, Lambda/EC2 workloads, AWS services) and a background error at
//! a few percent overall. A stream's home region carries full traffic, its other regions 45 %;
//! global services (IAM, console sign-in) appear in us-east-1 only.
//!
//! # Delivery model
//!
//! Records arrive 45 s to 4 min after their eventTime (6 % another 5 to 15 min later) and are
//! written, shuffled, in the file of the next delivery tick of their stream (every 5 minutes by
//! default, hourly for the sample). Folder dates and file names carry the delivery time, so
//! late-evening records land in the next day's folder. 0.2 % of ordinary records are delivered
//! again in a later file (same eventID); injected and scripted records never are.
//!
//! # Determinism
//!
//! Every random choice comes from generators derived from `--seed` and a stable label (the
//! stream's account and region, the anomaly id), iteration orders are fixed, the wall clock is
//! never read, and gzip headers carry mtime 0: the same flags give byte-identical files.

pub mod anomaly;
pub mod catalogue;
pub mod cli;
pub mod clock;
pub mod config;
pub mod data;
pub mod delivery;
pub mod errors;
pub mod identity;
pub mod inventory;
pub mod layout;
pub mod payload;
pub mod record;
pub mod rng;
pub mod routine;
pub mod run;
pub mod scenario;
pub mod sink;
pub mod stream;
pub mod traffic;

pub use run::{LABELS_FILE, Summary, run};
