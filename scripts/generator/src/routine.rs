//! The evaluation background's routines: the bursty, clumped, habitual traffic that a real
//! account has on top of the smooth rates of [`crate::traffic`], and that a detector must not
//! mistake for an anomaly. Used by `--preset eval` only, so other presets are unchanged.
//!
//! Per account (habits drawn from the seed and the account id) and per stream (account x
//! region; a secondary region gets about half of the home region's routines):
//!
//! * **Autoscaling**: scale-out and scale-in events a few times a day, more in local daytime;
//!   each launches (`RunInstances`, by `autoscaling.amazonaws.com`) or terminates 1-8 instances
//!   within two minutes, and new instances create their log streams over the next minutes.
//! * **Deploy pipelines** at random weekday working hours (not fixed minutes): a change set,
//!   polling reads for 3-10 minutes, function code updates, target (de)registration, alarms.
//! * **A nightly job** at a fixed local minute that usually starts on time, sometimes 1-3
//!   minutes late and now and then 4-12 minutes late: a few dozen `CreateSnapshot` calls, then
//!   as many `DeleteSnapshot` calls half an hour later (half as many in a secondary region).
//! * **A weekly job** (most accounts): once a week at a fixed local time, a few dozen calls to
//!   one write API within a few minutes.
//! * **Human sessions**: 2-4 operators per account, each with habits: the 1-3 write APIs they
//!   usually change and how often they work (0.3-1 sessions per weekday, a few on weekends). A
//!   session is a person in the console or CLI doing 3-12 write calls on one or two of their
//!   APIs, spread over 5-40 minutes, plus some reads.
//! * **Recurring jobs** (`recurring.json` lists their runs): per account, on UTC schedules as
//!   cron writes them, each on its own write API: a daily job starting exactly on a 4-hour
//!   boundary (00:00, 04:00, ... 20:00), a daily job that starts 1-3 minutes before a boundary
//!   and runs 3-6 minutes (nearly every run crosses it), a daily job at a fixed odd minute (a
//!   20:08 rule clean-up), a job at the top of every hour, and a weekly job on a boundary.
//!   Each starts 0 to 0-15 minutes late (its own jitter), skips some days (0-20 %), and makes
//!   about the same number of calls every run.
//! * **Error background in clumps**: each stream has 1-3 throttle-prone busy APIs whose callers
//!   are throttled 2-8 times within a minute or two (SDK retries), 1-3 times a day, mostly in
//!   the busy hours; and in some accounts a daily cron that fails 4-12 times with the same
//!   error code in one minute.
//!
//! Every routine call is planned up front from generators derived from the seed and the
//! account (and region), never from the stream's own generator, so a routine is identical in
//! the clean and the anomalous variant of a seed, and the anomaly planner can compute exactly
//! what the background holds at any minute.

use rand::Rng;

use crate::anomaly::Span;
use crate::catalogue::{self, APIS, Caller};
use crate::clock::{self, MINUTES_PER_DAY, Minute};
use crate::config::Account;
use crate::errors;
use crate::record::Failure;
use crate::rng::{self, Rand};
use crate::traffic;

/// Who makes a routine call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    /// Any principal of the class, drawn per call.
    Class(Caller),
    /// One principal for the whole routine run (a person's session, one deploy, one job run):
    /// index into [`Routines::sessions`].
    Session(usize),
}

/// One planned routine call.
#[derive(Debug, Clone)]
pub struct RoutineCall {
    pub minute: Minute,
    pub second: u32,
    /// Catalogue index.
    pub api: usize,
    pub who: Who,
    /// A failure fixed by the routine (throttling clumps, a failing cron).
    pub failure: Option<Failure>,
    /// Draw the API's ordinary background errors for this call.
    pub background_errors: bool,
}

/// The routines of one stream, in time order.
#[derive(Debug, Clone, Default)]
pub struct Routines {
    pub calls: Vec<RoutineCall>,
    /// The caller class of each session.
    pub sessions: Vec<Caller>,
    /// Every run of a scheduled job (nightly, weekly, failing cron, recurring jobs), by start.
    pub runs: Vec<JobRun>,
}

/// One run of a scheduled job: the calls it made to one API, in `[start, last]`.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRun {
    /// Which job, e.g. `nightly-create`, `daily-on-boundary`, `hourly`.
    pub job: &'static str,
    /// `daily`, `hourly` or `weekly`.
    pub schedule: &'static str,
    /// Catalogue index.
    pub api: usize,
    /// The error code every call of the run fails with (the failing cron).
    pub error_code: Option<String>,
    pub start: Minute,
    /// The last minute the run may have a call in.
    pub last: Minute,
    pub calls: u32,
}

impl Routines {
    /// Calls to `api` without a fixed failure in `[from, to)` (counts the background a
    /// call-rate anomaly on `api` is compared with).
    pub fn count(&self, api: usize, from: Minute, to: Minute) -> usize {
        let a = self.calls.partition_point(|c| c.minute < from);
        self.calls[a..]
            .iter()
            .take_while(|c| c.minute < to)
            .filter(|c| c.api == api && c.failure.is_none())
            .count()
    }
}

/// Share of the home region's routines that a secondary region runs.
const SECONDARY_SHARE: f64 = 0.5;

/// A person who changes things by hand, and their habits.
#[derive(Debug, Clone)]
struct Operator {
    class: Caller,
    /// The write APIs they usually change.
    apis: Vec<(&'static str, &'static str)>,
    sessions_per_weekday: f64,
}

/// An account's habits: which routines it has and how big they are.
#[derive(Debug, Clone)]
struct Habits {
    autoscaling_per_day: f64,
    deploys_per_weekday: f64,
    /// Local minute of day of the nightly job, and its usual size.
    nightly_at: i64,
    nightly_calls: u32,
    /// (local weekday 0 = Monday, local minute of day, API, calls).
    weekly: Option<(i64, i64, &'static str, &'static str, u32)>,
    operators: Vec<Operator>,
    /// Throttle-prone APIs (draw from the per-stream planner) and clumps per day on each.
    throttle_prone: usize,
    clumps_per_day: f64,
    /// (local minute of day, source, name, errors per run).
    failing_cron: Option<(i64, &'static str, &'static str, u32)>,
}

fn habits(seed: u64, account: &str) -> Habits {
    let mut rng = rng::derive(seed, &format!("eval/habits/{account}"));
    let autoscaling_per_day = if rng.random_bool(0.75) {
        rng.random_range(3.0..8.0)
    } else {
        0.0
    };
    let deploys_per_weekday = rng.random_range(0.5..3.5);
    let nightly_at = rng.random_range(0..4) * 60 + [0, 15, 30, 45][rng.random_range(0..4)];
    let nightly_calls = rng.random_range(10..=40);
    let weekly = rng.random_bool(0.6).then(|| {
        let (source, name) = [
            ("ec2.amazonaws.com", "CreateTags"),
            ("ssm.amazonaws.com", "PutParameter"),
            ("s3.amazonaws.com", "PutBucketTagging"),
        ][rng.random_range(0..3)];
        (
            rng.random_range(0..7),
            rng.random_range(1..6) * 60,
            source,
            name,
            rng.random_range(15..=50),
        )
    });
    let operators = (0..rng.random_range(2..=4))
        .map(|_| {
            let class = if rng.random_bool(0.7) {
                Caller::Console
            } else {
                Caller::Cli
            };
            let apis = (0..rng.random_range(1..=3))
                .map(|_| HUMAN_WRITES[rng.random_range(0..HUMAN_WRITES.len())])
                .collect();
            Operator {
                class,
                apis,
                sessions_per_weekday: rng.random_range(0.3..1.0),
            }
        })
        .collect();
    let throttle_prone = rng.random_range(1..=3);
    let clumps_per_day = rng.random_range(1.0..3.0);
    let failing_cron = rng.random_bool(0.5).then(|| {
        let (source, name) = [
            ("s3.amazonaws.com", "GetBucketPolicy"),
            ("ssm.amazonaws.com", "GetParameter"),
            ("secretsmanager.amazonaws.com", "GetSecretValue"),
            ("logs.amazonaws.com", "CreateLogStream"),
        ][rng.random_range(0..4)];
        (
            rng.random_range(0..24) * 60 + rng.random_range(0..60),
            source,
            name,
            rng.random_range(4..=12),
        )
    });
    Habits {
        autoscaling_per_day,
        deploys_per_weekday,
        nightly_at,
        nightly_calls,
        weekly,
        operators,
        throttle_prone,
        clumps_per_day,
        failing_cron,
    }
}

/// Write APIs people change by hand in the console or CLI.
const HUMAN_WRITES: &[(&str, &str)] = &[
    ("ec2.amazonaws.com", "CreateTags"),
    ("ec2.amazonaws.com", "AuthorizeSecurityGroupIngress"),
    ("ec2.amazonaws.com", "RevokeSecurityGroupIngress"),
    ("ec2.amazonaws.com", "TerminateInstances"),
    ("ec2.amazonaws.com", "RunInstances"),
    ("ssm.amazonaws.com", "PutParameter"),
    ("s3.amazonaws.com", "PutBucketTagging"),
    ("s3.amazonaws.com", "PutBucketPolicy"),
    ("iam.amazonaws.com", "AttachRolePolicy"),
    ("iam.amazonaws.com", "PutRolePolicy"),
    ("iam.amazonaws.com", "CreateRole"),
    ("autoscaling.amazonaws.com", "UpdateAutoScalingGroup"),
    ("logs.amazonaws.com", "PutRetentionPolicy"),
    ("monitoring.amazonaws.com", "PutMetricAlarm"),
];

/// The routines of `account` in `region` over `span`.
pub fn plan(seed: u64, account: &Account, region: &str, span: Span) -> Routines {
    let habits = habits(seed, &account.id);
    let mut planner = Planner {
        rng: rng::derive(seed, &format!("eval/routines/{}/{region}", account.id)),
        region,
        offset: account.utc_offset,
        share: if account.home_region == region {
            1.0
        } else {
            SECONDARY_SHARE
        },
        out: Routines::default(),
    };
    // Local days overlapping the span.
    let first_day = (span.start + account.utc_offset).div_euclid(MINUTES_PER_DAY) - 1;
    let last_day = (span.end + account.utc_offset).div_euclid(MINUTES_PER_DAY) + 1;
    let prone = planner.throttle_prone(&habits);
    for day in first_day..=last_day {
        let local_midnight = day * MINUTES_PER_DAY;
        planner.autoscaling(&habits, local_midnight);
        planner.deploys(&habits, local_midnight);
        planner.nightly(&habits, local_midnight);
        planner.weekly(&habits, local_midnight);
        planner.sessions(&habits, local_midnight);
        planner.retry_clumps(&habits, &prone, local_midnight);
        planner.failing_cron(&habits, local_midnight);
    }
    // The recurring jobs draw from random streams of their own, so adding them left every
    // other routine as it was.
    let jobs = recurring_jobs(seed, &account.id);
    planner.rng = rng::derive(seed, &format!("eval/recurring/{}/{region}", account.id));
    let first_utc_day = span.start.div_euclid(MINUTES_PER_DAY) - 1;
    let last_utc_day = span.end.div_euclid(MINUTES_PER_DAY) + 1;
    for day in first_utc_day..=last_utc_day {
        for job in &jobs {
            planner.recurring(job, day * MINUTES_PER_DAY);
        }
    }
    let mut out = planner.out;
    out.calls
        .retain(|c| c.minute >= span.start && c.minute < span.end);
    out.calls.sort_by_key(|c| (c.minute, c.second));
    out.runs
        .retain(|r| r.start >= span.start && r.last < span.end);
    out.runs.sort_by_key(|r| (r.start, r.api));
    out
}

/// When a recurring job runs (UTC).
#[derive(Debug, Clone, Copy)]
enum Schedule {
    /// Every day at this minute of the day.
    Daily(i64),
    /// Every hour at this minute of the hour.
    Hourly(i64),
    /// Every week on this weekday (0 = Monday) at this minute of the day.
    Weekly(i64, i64),
}

/// A recurring job of an account.
#[derive(Debug, Clone)]
struct Job {
    name: &'static str,
    schedule: Schedule,
    api: (&'static str, &'static str),
    /// Usual calls per run and the minutes they are spread over.
    calls: u32,
    minutes: i64,
    /// The run starts 0..=jitter minutes after its scheduled minute.
    jitter: i64,
    /// Chance that a day's (or hour's, or week's) run is skipped.
    skip: f64,
    /// Runs in the secondary region too (at half the size).
    both_regions: bool,
}

/// Write APIs that scheduled automation calls (none of them used by another routine's job).
const JOB_APIS: &[(&str, &str)] = &[
    ("ssm.amazonaws.com", "SendCommand"),
    ("secretsmanager.amazonaws.com", "PutSecretValue"),
    ("kms.amazonaws.com", "CreateGrant"),
    ("logs.amazonaws.com", "PutRetentionPolicy"),
    ("monitoring.amazonaws.com", "PutMetricAlarm"),
    ("autoscaling.amazonaws.com", "SetDesiredCapacity"),
    ("ec2.amazonaws.com", "StartInstances"),
    ("elasticloadbalancing.amazonaws.com", "RegisterTargets"),
];

/// The recurring jobs of `account`: one of each kind, on distinct APIs.
fn recurring_jobs(seed: u64, account: &str) -> Vec<Job> {
    let mut rng = rng::derive(seed, &format!("eval/recurring-jobs/{account}"));
    let mut apis = JOB_APIS.to_vec();
    let mut next_api = |rng: &mut Rand| apis.swap_remove(rng.random_range(0..apis.len()));
    let boundary = |rng: &mut Rand| rng.random_range(0..6) * 4 * 60;
    let jitter = |rng: &mut Rand| [0, 1, 2, 3, 5, 8, 10, 15][rng.random_range(0..8)];
    let skip = |rng: &mut Rand| [0.0, 0.0, 0.1, 0.2][rng.random_range(0..4)];
    let on_boundary = Job {
        name: "daily-on-boundary",
        schedule: Schedule::Daily(boundary(&mut rng)),
        api: next_api(&mut rng),
        calls: rng.random_range(10..=60),
        minutes: rng.random_range(1..=4),
        jitter: jitter(&mut rng),
        skip: skip(&mut rng),
        both_regions: true,
    };
    // Starts 1-3 minutes before a boundary (0-2 minutes late) and lasts 3-6 minutes: nearly
    // every run crosses it.
    let across = Job {
        name: "daily-across-boundary",
        schedule: Schedule::Daily(
            (boundary(&mut rng) - rng.random_range(1..=3)).rem_euclid(MINUTES_PER_DAY),
        ),
        api: next_api(&mut rng),
        calls: rng.random_range(20..=80),
        minutes: rng.random_range(3..=6),
        jitter: [0, 1, 2][rng.random_range(0..3)],
        skip: skip(&mut rng),
        both_regions: true,
    };
    let fixed_minute = Job {
        name: "daily-fixed-minute",
        schedule: Schedule::Daily(rng.random_range(0..24) * 60 + rng.random_range(1..60)),
        api: next_api(&mut rng),
        calls: rng.random_range(10..=80),
        minutes: rng.random_range(1..=6),
        jitter: jitter(&mut rng),
        skip: skip(&mut rng),
        both_regions: true,
    };
    let hourly = Job {
        name: "hourly",
        schedule: Schedule::Hourly(0),
        api: next_api(&mut rng),
        calls: rng.random_range(5..=15),
        minutes: rng.random_range(1..=2),
        jitter: rng.random_range(0..=3),
        skip: [0.0, 0.05][rng.random_range(0..2)],
        both_regions: false,
    };
    let weekly = Job {
        name: "weekly-on-boundary",
        schedule: Schedule::Weekly(rng.random_range(0..7), boundary(&mut rng)),
        api: next_api(&mut rng),
        calls: rng.random_range(15..=60),
        minutes: rng.random_range(1..=4),
        jitter: jitter(&mut rng),
        skip: 0.0,
        both_regions: false,
    };
    vec![on_boundary, across, fixed_minute, hourly, weekly]
}

struct Planner<'a> {
    rng: Rand,
    region: &'a str,
    offset: i64,
    share: f64,
    out: Routines,
}

impl Planner<'_> {
    fn api(&self, source: &str, name: &str) -> Option<usize> {
        catalogue::find(source, name).filter(|&i| APIS[i].recorded_in(self.region))
    }

    fn session(&mut self, class: Caller) -> Who {
        self.out.sessions.push(class);
        Who::Session(self.out.sessions.len() - 1)
    }

    /// UTC minute of a local minute.
    fn utc(&self, local: Minute) -> Minute {
        local - self.offset
    }

    fn weekend(local_midnight: Minute) -> bool {
        clock::weekday(local_midnight) >= 5
    }

    fn call(&mut self, minute: Minute, api: usize, who: Who) {
        let second = self.rng.random_range(0..60);
        self.out.calls.push(RoutineCall {
            minute,
            second,
            api,
            who,
            failure: None,
            background_errors: true,
        });
    }

    /// `n` calls spread uniformly over `[from, from + minutes)`.
    fn spread(&mut self, from: Minute, minutes: i64, api: usize, who: Who, n: u32) {
        for _ in 0..n {
            let minute = from + self.rng.random_range(0..minutes.max(1));
            self.call(minute, api, who);
        }
    }

    /// How late a scheduled job starts: usually on time, sometimes a few minutes late.
    fn lateness(&mut self) -> i64 {
        let u: f64 = self.rng.random();
        if u < 0.7 {
            0
        } else if u < 0.9 {
            self.rng.random_range(1..=3)
        } else {
            self.rng.random_range(4..=12)
        }
    }

    /// A local minute of the day drawn with more weight in the daytime.
    fn daytime_minute(&mut self) -> i64 {
        loop {
            let m = self.rng.random_range(0..MINUTES_PER_DAY);
            let z = (m as f64 / 60.0 - 14.0) / 4.0;
            if self.rng.random::<f64>() < 0.25 + 0.75 * (-z * z).exp() {
                return m;
            }
        }
    }

    fn autoscaling(&mut self, h: &Habits, local_midnight: Minute) {
        let (Some(run), Some(terminate), logs) = (
            self.api("ec2.amazonaws.com", "RunInstances"),
            self.api("ec2.amazonaws.com", "TerminateInstances"),
            self.api("logs.amazonaws.com", "CreateLogStream"),
        ) else {
            return;
        };
        let day_factor = if Self::weekend(local_midnight) {
            0.5
        } else {
            1.0
        };
        let events = traffic::poisson(
            &mut self.rng,
            h.autoscaling_per_day * self.share * day_factor,
        );
        let service = Who::Class(Caller::Service("autoscaling.amazonaws.com"));
        for _ in 0..events {
            let local = local_midnight + self.daytime_minute();
            let t = self.utc(local);
            let n =
                1 + rng::weighted(&mut self.rng, &[8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0]) as u32;
            if self.rng.random_bool(0.6) {
                self.spread(t, 2, run, service, n);
                if let Some(logs) = logs {
                    for _ in 0..n {
                        let streams = self.rng.random_range(2..=4);
                        let at = t + self.rng.random_range(2..=5);
                        self.spread(at, 2, logs, Who::Class(Caller::Workload), streams);
                    }
                }
            } else {
                self.spread(t, 2, terminate, service, n);
            }
        }
    }

    fn deploys(&mut self, h: &Habits, local_midnight: Minute) {
        if Self::weekend(local_midnight) {
            return;
        }
        let n = traffic::poisson(&mut self.rng, h.deploys_per_weekday * self.share);
        for _ in 0..n {
            let local = local_midnight + self.rng.random_range(9 * 60..18 * 60);
            let t0 = self.utc(local);
            let who = self.session(Caller::Pipeline);
            let polls = self.rng.random_range(3..=10);
            let cfn = |name| self.api("cloudformation.amazonaws.com", name);
            let (create, describe_cs, execute, events) = (
                cfn("CreateChangeSet"),
                cfn("DescribeChangeSet"),
                cfn("ExecuteChangeSet"),
                cfn("DescribeStackEvents"),
            );
            if let Some(api) = create {
                self.call(t0, api, who);
            }
            if let Some(api) = describe_cs {
                let k = self.rng.random_range(3..=6);
                self.spread(t0, 2, api, who, k);
            }
            if let Some(api) = execute {
                self.call(t0 + 1, api, who);
            }
            if let Some(api) = events {
                self.spread(t0 + 1, polls, api, who, 4 * polls as u32);
            }
            let functions = self.rng.random_range(1..=6);
            let done = t0 + 1 + polls;
            let mut writes: Vec<(&str, &str, u32, i64)> = vec![
                (
                    "lambda.amazonaws.com",
                    "UpdateFunctionCode20150331v2",
                    functions,
                    2,
                ),
                (
                    "lambda.amazonaws.com",
                    "UpdateFunctionConfiguration20150331v2",
                    self.rng.random_range(0..=functions),
                    2,
                ),
                (
                    "monitoring.amazonaws.com",
                    "PutMetricAlarm",
                    self.rng.random_range(0..=4),
                    1,
                ),
                (
                    "elasticloadbalancing.amazonaws.com",
                    "RegisterTargets",
                    self.rng.random_range(1..=3),
                    1,
                ),
                (
                    "elasticloadbalancing.amazonaws.com",
                    "DeregisterTargets",
                    self.rng.random_range(1..=3),
                    1,
                ),
                (
                    "ec2.amazonaws.com",
                    "CreateTags",
                    self.rng.random_range(0..=4),
                    1,
                ),
            ];
            writes.push((
                "iam.amazonaws.com",
                "PutRolePolicy",
                self.rng.random_range(0..=2),
                1,
            ));
            for (source, name, k, minutes) in writes {
                if let Some(api) = self.api(source, name) {
                    let at = if name.starts_with("Update") {
                        t0 + 2 + polls / 2
                    } else {
                        done
                    };
                    self.spread(at, minutes, api, who, k);
                }
            }
        }
    }

    fn nightly(&mut self, h: &Habits, local_midnight: Minute) {
        let (Some(create), Some(delete)) = (
            self.api("ec2.amazonaws.com", "CreateSnapshot"),
            self.api("ec2.amazonaws.com", "DeleteSnapshot"),
        ) else {
            return;
        };
        let start = self.utc(local_midnight + h.nightly_at) + self.lateness();
        let who = self.session(Caller::Workload);
        let size = f64::from(h.nightly_calls) * self.share;
        let n = (size * self.rng.random_range(0.9..1.1)).round() as u32;
        let minutes = self.rng.random_range(1..=4);
        self.spread(start, minutes, create, who, n);
        self.run("nightly-create", "daily", create, None, start, minutes, n);
        let later = start + self.rng.random_range(20..=40);
        let m = (size * self.rng.random_range(0.8..1.1)).round() as u32;
        let minutes = self.rng.random_range(1..=3);
        self.spread(later, minutes, delete, who, m);
        self.run("nightly-delete", "daily", delete, None, later, minutes, m);
    }

    /// Records a job's run for `recurring.json`.
    #[allow(clippy::too_many_arguments)]
    fn run(
        &mut self,
        job: &'static str,
        schedule: &'static str,
        api: usize,
        error_code: Option<String>,
        start: Minute,
        minutes: i64,
        calls: u32,
    ) {
        self.out.runs.push(JobRun {
            job,
            schedule,
            api,
            error_code,
            start,
            last: start + minutes.max(1) - 1,
            calls,
        });
    }

    /// The runs of one recurring job that start on the UTC day beginning at `utc_midnight`.
    fn recurring(&mut self, job: &Job, utc_midnight: Minute) {
        if !job.both_regions && self.share < 1.0 {
            return;
        }
        let Some(api) = self.api(job.api.0, job.api.1) else {
            return;
        };
        let (starts, schedule): (Vec<Minute>, &'static str) = match job.schedule {
            Schedule::Daily(at) => (vec![utc_midnight + at], "daily"),
            Schedule::Hourly(at) => (
                (0..24).map(|h| utc_midnight + h * 60 + at).collect(),
                "hourly",
            ),
            Schedule::Weekly(weekday, at) => {
                if clock::weekday(utc_midnight) != weekday {
                    return;
                }
                (vec![utc_midnight + at], "weekly")
            }
        };
        for scheduled in starts {
            // Draw the same numbers whether or not the run is skipped.
            let skipped = self.rng.random_bool(job.skip);
            let start = scheduled + self.rng.random_range(0..=job.jitter);
            let size = f64::from(job.calls) * self.share * self.rng.random_range(0.85..1.15);
            let n = (size.round() as u32).max(1);
            if skipped {
                continue;
            }
            let who = self.session(Caller::Workload);
            self.spread(start, job.minutes, api, who, n);
            self.run(job.name, schedule, api, None, start, job.minutes, n);
        }
    }

    fn weekly(&mut self, h: &Habits, local_midnight: Minute) {
        let Some((weekday, at, source, name, calls)) = h.weekly else {
            return;
        };
        if clock::weekday(local_midnight) != weekday || self.share < 1.0 {
            return;
        }
        let Some(api) = self.api(source, name) else {
            return;
        };
        let start = self.utc(local_midnight + at) + self.lateness();
        let who = self.session(Caller::Workload);
        let n = (f64::from(calls) * self.rng.random_range(0.9..1.1)).round() as u32;
        let minutes = self.rng.random_range(1..=3);
        self.spread(start, minutes, api, who, n);
        self.run("weekly", "weekly", api, None, start, minutes, n);
    }

    fn sessions(&mut self, h: &Habits, local_midnight: Minute) {
        let weekend = Self::weekend(local_midnight);
        let reads: Vec<usize> = [
            ("ec2.amazonaws.com", "DescribeInstances"),
            ("ec2.amazonaws.com", "DescribeSecurityGroups"),
        ]
        .iter()
        .filter_map(|(s, name)| self.api(s, name))
        .collect();
        for operator in &h.operators {
            let apis: Vec<usize> = operator
                .apis
                .iter()
                .filter_map(|(s, name)| self.api(s, name))
                .collect();
            let day = if weekend { 0.15 } else { 1.0 };
            let rate = operator.sessions_per_weekday * self.share * day;
            let n = traffic::poisson(&mut self.rng, rate);
            if apis.is_empty() {
                continue;
            }
            for _ in 0..n {
                let local = if weekend {
                    self.rng.random_range(10 * 60..22 * 60)
                } else {
                    self.rng.random_range(8 * 60 + 30..19 * 60)
                };
                let t = self.utc(local_midnight + local);
                let who = self.session(operator.class);
                let length = self.rng.random_range(5..=40);
                let chosen: Vec<usize> = (0..self.rng.random_range(1..=2))
                    .map(|_| apis[self.rng.random_range(0..apis.len())])
                    .collect();
                for _ in 0..self.rng.random_range(3..=12) {
                    let api = chosen[self.rng.random_range(0..chosen.len())];
                    let minute = t + self.rng.random_range(0..length);
                    self.call(minute, api, who);
                }
                for &api in &reads {
                    let k = self.rng.random_range(2..=10);
                    self.spread(t, length, api, who, k);
                }
            }
        }
    }

    /// The throttle-prone APIs of this stream: drawn by call volume, once per stream.
    fn throttle_prone(&mut self, h: &Habits) -> Vec<usize> {
        let busy: Vec<usize> = (0..APIS.len())
            .filter(|&i| {
                APIS[i].recorded_in(self.region)
                    && APIS[i].kind == catalogue::EventKind::ApiCall
                    && matches!(APIS[i].pattern, catalogue::Pattern::Machine { .. })
            })
            .collect();
        let mut weights: Vec<f64> = busy
            .iter()
            .map(|&i| match APIS[i].pattern {
                catalogue::Pattern::Machine { per_hour } => per_hour,
                _ => 0.0,
            })
            .collect();
        let mut chosen = Vec::new();
        for _ in 0..h.throttle_prone.min(busy.len()) {
            let k = rng::weighted(&mut self.rng, &weights);
            weights[k] = 0.0;
            chosen.push(busy[k]);
        }
        chosen
    }

    fn retry_clumps(&mut self, h: &Habits, prone: &[usize], local_midnight: Minute) {
        for &api in prone {
            let n = traffic::poisson(&mut self.rng, h.clumps_per_day * self.share);
            let failure = Failure {
                code: APIS[api].service.throttle_code.to_string(),
                message: Some(APIS[api].service.throttle_message.to_string()),
            };
            for _ in 0..n {
                let local = local_midnight + self.daytime_minute();
                let t = self.utc(local);
                let k = self.rng.random_range(2..=8);
                let minutes = if self.rng.random_bool(0.7) { 1 } else { 2 };
                for _ in 0..k {
                    let minute = t + self.rng.random_range(0..minutes);
                    let second = self.rng.random_range(0..60);
                    self.out.calls.push(RoutineCall {
                        minute,
                        second,
                        api,
                        who: Who::Class(Caller::Workload),
                        failure: Some(failure.clone()),
                        background_errors: false,
                    });
                }
            }
        }
    }

    fn failing_cron(&mut self, h: &Habits, local_midnight: Minute) {
        let Some((at, source, name, errors)) = h.failing_cron else {
            return;
        };
        if self.share < 1.0 {
            return;
        }
        let Some(api) = self.api(source, name) else {
            return;
        };
        let spec = APIS[api].errors.first();
        let failure = match spec {
            Some(spec) => Failure {
                code: spec.code.to_string(),
                message: spec.message.filter(|m| !m.is_empty()).map(str::to_string),
            },
            None => errors::denied(&mut self.rng, &APIS[api]),
        };
        let t = self.utc(local_midnight + at) + self.lateness();
        let k = (f64::from(errors) * self.rng.random_range(0.8..1.2)).round() as u32;
        self.run(
            "failing-cron",
            "daily",
            api,
            Some(failure.code.clone()),
            t,
            1,
            k,
        );
        for _ in 0..k {
            let second = self.rng.random_range(0..60);
            self.out.calls.push(RoutineCall {
                minute: t,
                second,
                api,
                who: Who::Class(Caller::Workload),
                failure: Some(failure.clone()),
                background_errors: false,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::minute_of_date;
    use chrono::NaiveDate;

    fn span() -> Span {
        let start = minute_of_date(NaiveDate::from_ymd_opt(2024, 3, 4).unwrap());
        Span {
            start,
            end: start + 14 * MINUTES_PER_DAY,
        }
    }

    fn account() -> Account {
        Account {
            id: "311111111111".into(),
            utc_offset: -300,
            size: 1.0,
            home_region: "us-east-1".into(),
        }
    }

    #[test]
    fn routines_are_deterministic_sorted_and_inside_the_span() {
        let a = plan(4, &account(), "us-east-1", span());
        let b = plan(4, &account(), "us-east-1", span());
        assert_eq!(a.calls.len(), b.calls.len());
        assert!(a.calls.len() > 500, "{}", a.calls.len());
        assert!(
            a.calls
                .windows(2)
                .all(|w| (w[0].minute, w[0].second) <= (w[1].minute, w[1].second))
        );
        assert!(
            a.calls
                .iter()
                .all(|c| c.minute >= span().start && c.minute < span().end)
        );
        let secondary = plan(4, &account(), "eu-west-1", span());
        assert!(secondary.calls.len() < a.calls.len());
        assert!(
            secondary
                .calls
                .iter()
                .all(|c| APIS[c.api].recorded_in("eu-west-1"))
        );
    }

    #[test]
    fn the_nightly_job_makes_a_daily_clump_of_snapshots() {
        let r = plan(4, &account(), "us-east-1", span());
        let create = catalogue::find("ec2.amazonaws.com", "CreateSnapshot").unwrap();
        for day in 1..13 {
            let from = span().start + day * MINUTES_PER_DAY;
            let n = r.count(create, from, from + MINUTES_PER_DAY);
            assert!((8..=50).contains(&n), "day {day}: {n}");
        }
    }

    #[test]
    fn recurring_jobs_run_on_their_schedules_with_their_jitter() {
        let r = plan(4, &account(), "us-east-1", span());
        let jobs = recurring_jobs(4, "311111111111");
        for job in &jobs {
            let runs: Vec<&JobRun> = r.runs.iter().filter(|run| run.job == job.name).collect();
            let expected = match job.schedule {
                Schedule::Daily(_) => 14.0,
                Schedule::Hourly(_) => 14.0 * 24.0,
                Schedule::Weekly(..) => 2.0,
            };
            let n = runs.len() as f64;
            assert!(
                n <= expected && n >= expected * (1.0 - job.skip) - 4.0,
                "{}: {n} runs of {expected}",
                job.name
            );
            for run in runs {
                let late = match job.schedule {
                    Schedule::Daily(at) | Schedule::Weekly(_, at) => {
                        (run.start - at).rem_euclid(MINUTES_PER_DAY)
                    }
                    Schedule::Hourly(at) => (run.start - at).rem_euclid(60),
                };
                assert!((0..=job.jitter).contains(&late), "{}: {run:?}", job.name);
                let calls = r.count(run.api, run.start, run.last + 1);
                assert!(calls >= run.calls as usize, "{}: {run:?}", job.name);
            }
        }
        // Most runs of the across-boundary job start before a 4-hour boundary and end after.
        let across: Vec<&JobRun> = r
            .runs
            .iter()
            .filter(|run| run.job == "daily-across-boundary")
            .collect();
        let crossing = across
            .iter()
            .filter(|run| run.start / 240 != run.last / 240)
            .count();
        assert!(2 * crossing > across.len(), "{across:?}");
    }
}
