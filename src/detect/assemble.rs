//! Episode -> Start and End records, with AWS's statistics and attributions.
//!
//! - `baseline.average`: calls in the reported baseline (the `baselineDuration` minutes before
//!   the start) divided by `baselineDuration`.
//! - Start: `insight.average` is the calls per minute of the minutes that opened the episode
//!   (usually its first minute), `insightDuration` their number, so a Start depends only on data
//!   up to its confirmation and never changes once written.
//! - End: `insight.average` is the episode's calls divided by its minutes, `insightDuration`
//!   its minutes, `eventTime` the minute after its last unusual minute.
//! - Attributions: the top five values of `userIdentityArn`, `userAgent`, (call rate only)
//!   `errorCode` (`"null"` for success) and (data events only) `resourceArn` by count, ties by
//!   value, each with its per-minute average over the same window as the statistics; an empty
//!   baseline is `[]`. `sourceEventCategory` is the series' category.
//! - IDs: `sharedEventID` is a UUID v5 of the episode's identity (series, its category when
//!   data, and start minute) and
//!   each `eventID` a UUID v5 of the shared ID and the state, so a re-run gives the same bytes.

use super::baseline::BLOCK_HOURS;
use super::{Direction, Episode};
use crate::aggregate::{Series, Tallies, Tally};
use crate::decode::{NO_SYM, Strings, Sym};
use crate::model::explanation::Explanation;
use crate::model::insight::{
    AttributedValue, Attribution, Average, EVENT_CATEGORY, EVENT_TYPE, EVENT_VERSION,
    InsightContext, InsightDetails, InsightRecord, MAX_ATTRIBUTION_VALUES, NO_ERROR, Statistics,
    round_average,
};
use crate::model::{CallRateScope, EventCategory, ID_NAMESPACE, InsightKind, Minute};
use std::collections::HashMap;
use uuid::Uuid;

/// The Start record, and the End record when the episode has ended.
pub fn episode_records(
    episode: &Episode,
    series: &Series,
    symbols: &Strings,
) -> Vec<InsightRecord> {
    let shared_id = shared_event_id(episode);
    let baseline_window = (episode.start.plus(-episode.baseline.minutes), episode.start);
    let baseline = Window::sum(series, baseline_window);
    let mut records = vec![record(
        episode,
        "Start",
        episode.start,
        (episode.start, episode.confirmed_at),
        &baseline,
        series,
        symbols,
        &shared_id,
    )];
    if let Some(end) = episode.end {
        records.push(record(
            episode,
            "End",
            end,
            (episode.start, end),
            &baseline,
            series,
            symbols,
            &shared_id,
        ));
    }
    records
}

pub fn shared_event_id(episode: &Episode) -> String {
    let key = &episode.key;
    let mut identity = format!(
        "{}|{}|{}|{}|{}|{}|{}",
        key.account,
        key.region,
        key.kind.insight_type(),
        key.event_source,
        key.event_name,
        key.kind.error_code().unwrap_or(""),
        episode.start
    );
    // Management Insights keep the identity (and so the IDs) they had before data events.
    if key.category == EventCategory::Data {
        identity.push_str("|Data");
    }
    Uuid::new_v5(&ID_NAMESPACE, identity.as_bytes()).to_string()
}

#[allow(clippy::too_many_arguments)]
fn record(
    episode: &Episode,
    state: &str,
    event_time: Minute,
    insight_window: (Minute, Minute),
    baseline: &Window,
    series: &Series,
    symbols: &Strings,
    shared_id: &str,
) -> InsightRecord {
    let key = &episode.key;
    let insight = Window::sum(series, insight_window);
    let event_id = Uuid::new_v5(&ID_NAMESPACE, format!("{shared_id}|{state}").as_bytes());
    InsightRecord {
        event_version: EVENT_VERSION.into(),
        event_time: event_time.to_rfc3339(),
        aws_region: key.region.to_string(),
        event_id: event_id.to_string(),
        event_type: EVENT_TYPE.into(),
        recipient_account_id: key.account.to_string(),
        shared_event_id: shared_id.into(),
        insight_details: InsightDetails {
            state: state.into(),
            event_source: key.event_source.to_string(),
            event_name: key.event_name.to_string(),
            insight_type: key.kind.insight_type().into(),
            error_code: key.kind.error_code().map(str::to_owned),
            source_event_category: Some(key.category.as_str().into()),
            insight_context: InsightContext {
                statistics: Statistics {
                    baseline: Average {
                        average: baseline.average(),
                    },
                    insight: Average {
                        average: insight.average(),
                    },
                    insight_duration: insight.minutes,
                    baseline_duration: baseline.minutes,
                },
                attributions: attributions(&key.kind, key.category, &insight, baseline, symbols),
            },
        },
        event_category: EVENT_CATEGORY.into(),
    }
}

/// Calls and attribute tallies summed over a span of minutes.
#[derive(Debug, Default)]
struct Window {
    minutes: i64,
    calls: u64,
    identities: HashMap<Sym, u64>,
    user_agents: HashMap<Sym, u64>,
    error_codes: HashMap<Sym, u64>,
    resources: HashMap<Sym, u64>,
}

impl Window {
    fn sum(series: &Series, (from, to): (Minute, Minute)) -> Window {
        let a = series.minutes.partition_point(|m| *m < from);
        let b = series.minutes.partition_point(|m| *m < to);
        let mut window = Window {
            minutes: (to.0 - from.0).max(0),
            ..Window::default()
        };
        for cell in &series.cells[a..b] {
            window.add(cell.count, cell.tallies(&series.spills));
        }
        window
    }

    fn add(&mut self, count: u32, tallies: Tallies) {
        self.calls += u64::from(count);
        let merge = |into: &mut HashMap<Sym, u64>, tally: Tally| {
            for (sym, n) in tally.iter() {
                *into.entry(sym).or_default() += u64::from(n);
            }
        };
        merge(&mut self.identities, tallies.identities);
        merge(&mut self.user_agents, tallies.user_agents);
        merge(&mut self.error_codes, tallies.error_codes);
        if let Some(resources) = tallies.resources {
            merge(&mut self.resources, resources);
        }
    }

    fn per_minute(&self, count: u64) -> f64 {
        if self.minutes == 0 {
            return 0.0;
        }
        round_average(count as f64 / self.minutes as f64)
    }

    fn average(&self) -> f64 {
        self.per_minute(self.calls)
    }
}

fn attributions(
    kind: &InsightKind,
    category: EventCategory,
    insight: &Window,
    baseline: &Window,
    symbols: &Strings,
) -> Vec<Attribution> {
    let named = |sym: Sym| symbols.get(sym).map(str::to_owned);
    let error_name = |sym: Sym| {
        if sym == NO_SYM {
            Some(NO_ERROR.to_owned())
        } else {
            named(sym)
        }
    };
    let mut out = vec![
        attribution(
            "userIdentityArn",
            &insight.identities,
            &baseline.identities,
            insight,
            baseline,
            &named,
        ),
        attribution(
            "userAgent",
            &insight.user_agents,
            &baseline.user_agents,
            insight,
            baseline,
            &named,
        ),
    ];
    if *kind == InsightKind::CallRate {
        out.push(attribution(
            "errorCode",
            &insight.error_codes,
            &baseline.error_codes,
            insight,
            baseline,
            &error_name,
        ));
    }
    if category == EventCategory::Data {
        out.push(attribution(
            "resourceArn",
            &insight.resources,
            &baseline.resources,
            insight,
            baseline,
            &named,
        ));
    }
    out
}

fn attribution(
    attribute: &str,
    in_insight: &HashMap<Sym, u64>,
    in_baseline: &HashMap<Sym, u64>,
    insight: &Window,
    baseline: &Window,
    name: &dyn Fn(Sym) -> Option<String>,
) -> Attribution {
    Attribution {
        attribute: attribute.into(),
        insight: top_values(in_insight, insight, name),
        baseline: top_values(in_baseline, baseline, name),
    }
}

/// The five most frequent values, by count and then by value.
fn top_values(
    counts: &HashMap<Sym, u64>,
    window: &Window,
    name: &dyn Fn(Sym) -> Option<String>,
) -> Vec<AttributedValue> {
    let mut named: Vec<(String, u64)> = counts
        .iter()
        .filter_map(|(sym, n)| name(*sym).map(|value| (value, *n)))
        .collect();
    named.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    named
        .into_iter()
        .take(MAX_ATTRIBUTION_VALUES)
        .map(|(value, n)| AttributedValue {
            value,
            average: window.per_minute(n),
        })
        .collect()
}

/// Why the episode opened, for people and for audits. `scope` is which management calls the
/// run counted toward call rate.
pub fn explain(episode: &Episode, scope: CallRateScope) -> Explanation {
    let key = &episode.key;
    let call_rate_scope = match (&key.kind, key.category) {
        (InsightKind::ErrorRate { .. }, _) => None,
        (InsightKind::CallRate, EventCategory::Management) => Some(scope),
        (InsightKind::CallRate, EventCategory::Data) => Some(CallRateScope::All),
    };
    // Said only where it is not AWS's default (write management calls), so a default run's
    // explanations read as they always did.
    let counted = match (key.category, call_rate_scope) {
        (EventCategory::Data, Some(_)) => " Counted: read and write data calls.",
        (EventCategory::Data, None) => " Counted: data calls.",
        (EventCategory::Management, Some(CallRateScope::All)) => {
            " Counted: every management call, read-only ones included (--call-rate-events all)."
        }
        (EventCategory::Management, _) => "",
    };
    let e = &episode.evidence;
    let minutes = e.window_minutes.max(1) as f64;
    let unit = match key.kind {
        InsightKind::CallRate => "calls",
        InsightKind::ErrorRate { .. } => "errors",
    };
    let (direction, verb) = match e.direction {
        Direction::Spike => ("increase", unit.to_owned()),
        Direction::Drop => ("decrease", format!("{unit} (a silence)")),
    };
    let distribution = match e.model.size {
        Some(_) => "negative-binomial",
        None => "poisson",
    };
    let novelty = if e.new_api {
        " This API had no call in the baseline, so it needed the higher count for new APIs."
    } else {
        ""
    };
    let basis = match e.habit {
        Some(h) => habit_name(&h, episode.start),
        None => season_name(e.bin),
    };
    let reason = format!(
        "{} {verb} in {} minute(s) where {:.4} were expected ({}, {}); the chance of at least \
         that many by chance is {}.{novelty}{counted}",
        e.observed,
        e.window_minutes,
        e.expected,
        distribution,
        basis,
        probability_text(e.tail_probability)
    );
    Explanation {
        shared_event_id: shared_event_id(episode),
        recipient_account_id: key.account.to_string(),
        aws_region: key.region.to_string(),
        event_source: key.event_source.to_string(),
        event_name: key.event_name.to_string(),
        insight_type: key.kind.insight_type().into(),
        error_code: key.kind.error_code().map(str::to_owned),
        source_event_category: (key.category != EventCategory::Management)
            .then(|| key.category.as_str().to_owned()),
        call_rate_scope: call_rate_scope
            .filter(|s| *s != CallRateScope::Write)
            .map(|s| s.as_str().to_owned()),
        direction: direction.into(),
        start_time: episode.start.to_rfc3339(),
        end_time: episode.end.map(Minute::to_rfc3339),
        window_minutes: e.window_minutes,
        observed_calls: e.observed,
        expected_calls: round_average(e.expected),
        observed_per_minute: round_average(e.observed as f64 / minutes),
        expected_per_minute: round_average(e.expected / minutes),
        tail_probability: e.tail_probability,
        distribution: distribution.into(),
        dispersion_size: e.model.size.map(round_average),
        season: season_name(e.bin),
        new_api: e.new_api,
        baseline_calls: episode.baseline.calls,
        baseline_minutes: episode.baseline.minutes,
        reason,
    }
}

/// `a job's habit: 6 of the last 7 days at about 20:08 UTC` for a window judged against what
/// the same time of day held on the previous days (`detect::habit`).
fn habit_name(h: &crate::detect::habit::Habit, start: Minute) -> String {
    let minute_of_day = start.0.rem_euclid(crate::model::MINUTES_PER_DAY);
    let at = format!("{:02}:{:02} UTC", minute_of_day / 60, minute_of_day % 60);
    if h.weekly_only {
        format!("a weekly job's habit: the same time of week last week, about {at}")
    } else {
        format!(
            "a job's habit: {} of the last {} days at about {at}",
            h.runs, h.days_seen
        )
    }
}

/// `weekday 08:00-12:00 UTC` for a seasonal bin.
fn season_name(bin: usize) -> String {
    let blocks = (24 / BLOCK_HOURS) as usize;
    let kind = if bin >= blocks { "weekend" } else { "weekday" };
    let from = (bin % blocks) as i64 * BLOCK_HOURS;
    format!("{kind} {from:02}:00-{:02}:00 UTC", from + BLOCK_HOURS)
}

/// A probability for the reason sentence: `below 1e-300` where it underflows (never `0.000e0`).
fn probability_text(p: f64) -> String {
    if p < 1e-300 {
        "below 1e-300".to_owned()
    } else {
        format!("{p:.3e}")
    }
}
