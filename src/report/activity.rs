//! Activities: the Insights that tell one story, grouped so an analyst reads one card per thing
//! that happened instead of a pile of Insights (pure).
//!
//! Two Insights are **related** when they are in the same account and region, close in time
//! (their minutes, Start to End, overlap or are at most `NEAR_MINUTES` apart), and one of:
//!
//! 1. **same API**: the same `eventSource` and `eventName` (a call-rate Insight and the
//!    error-rate Insight of the same calls, or an API that fired again right after it ended);
//! 2. **same caller, same service**: the same `eventSource` and the same top caller (the
//!    `userIdentityArn` with the highest Insight average), e.g. `CreateSecret` and
//!    `PutSecretValue` by one user;
//! 3. **the service's follow-up**: the same `eventSource` where one top caller is that AWS
//!    service itself (`*.amazonaws.com`), e.g. `secretsmanager.amazonaws.com`'s
//!    `StartSecretVersionDelete` after a user's `DeleteSecret`;
//! 4. **one caller's burst**: the same top caller, both starting in the same minute, whatever
//!    the service (a script touching several services at once).
//!
//! An **activity** is a group of Insights linked by such relations (a connected component): it
//! spans the minutes of its Insights, and lists why its Insights were put together. An Insight
//! related to no other is an activity of its own. The rule only joins Insights that share an
//! account, a region and minutes, so two unrelated actors are joined only when they share a
//! caller or an API in the same minutes.

use super::Episode;
use crate::model::Minute;
use std::collections::{BTreeMap, BTreeSet};

/// Insights whose minutes are at most this far apart are close in time.
pub const NEAR_MINUTES: i64 = 2;
/// The combined chart of an activity shows at least this many minutes before and after it (or
/// its own length, when longer; at most the page's context), so its Insights' spikes stand
/// apart instead of sharing one pixel of hours of context.
pub const MIN_CHART_CONTEXT_MINUTES: i64 = 30;

/// Why two Insights were put in one activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reason {
    SameApi,
    SameCallerSameService,
    ServiceFollowUp,
    CallerBurst,
}

impl Reason {
    pub fn text(self) -> &'static str {
        match self {
            Reason::SameApi => "the same API (its call rate and its error rate)",
            Reason::SameCallerSameService => "the same caller on the same service",
            Reason::ServiceFollowUp => "the AWS service acting after a caller's request",
            Reason::CallerBurst => "one caller's calls starting in the same minute",
        }
    }
}

/// One activity: indices into the episodes, oldest first, and why they belong together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activity {
    pub members: Vec<usize>,
    pub start: Minute,
    /// The first minute after its last Insight.
    pub end: Minute,
    pub reasons: BTreeSet<Reason>,
}

impl Activity {
    /// The minutes of its combined chart, `[from, until)`: its span (at most
    /// `MAX_CHARTED_EPISODE_MINUTES`) with context on both sides of its own length, at least
    /// `MIN_CHART_CONTEXT_MINUTES` and at most `context_minutes`.
    pub fn chart_window(&self, context_minutes: i64) -> (Minute, Minute) {
        let end = self
            .end
            .min(self.start.plus(super::MAX_CHARTED_EPISODE_MINUTES))
            .max(self.start.plus(1));
        let span = end.0 - self.start.0;
        let most = context_minutes.clamp(0, i64::from(super::MAX_CONTEXT_HOURS) * 60);
        let context = span.max(MIN_CHART_CONTEXT_MINUTES).min(most);
        (self.start.plus(-context), end.plus(context))
    }
}

/// The caller with the highest Insight average (`userIdentityArn`), if attributed.
pub fn top_caller(e: &Episode) -> Option<&str> {
    e.attributions()
        .iter()
        .find(|a| a.attribute == "userIdentityArn")?
        .insight
        .iter()
        .filter(|v| !v.value.is_empty() && v.value != "null")
        .max_by(|a, b| a.average.total_cmp(&b.average))
        .map(|v| v.value.as_str())
}

fn is_service(caller: &str) -> bool {
    caller.ends_with(".amazonaws.com") && !caller.contains(':')
}

/// Why `a` and `b` belong to one activity, if they do (see the module's rule).
pub fn related(a: &Episode, b: &Episode) -> Option<Reason> {
    if a.start.recipient_account_id != b.start.recipient_account_id
        || a.start.aws_region != b.start.aws_region
    {
        return None;
    }
    let ((a0, a1), (b0, b1)) = (a.own_minutes(), b.own_minutes());
    let gap = (b0.0 - a1.0).max(a0.0 - b1.0);
    if gap > NEAR_MINUTES {
        return None;
    }
    let (da, db) = (&a.start.insight_details, &b.start.insight_details);
    let same_service = da.event_source == db.event_source;
    if same_service && da.event_name == db.event_name {
        return Some(Reason::SameApi);
    }
    let (ca, cb) = (top_caller(a), top_caller(b));
    let same_caller = ca.is_some() && ca == cb;
    if same_service && same_caller {
        return Some(Reason::SameCallerSameService);
    }
    if same_service && (ca.is_some_and(is_service) || cb.is_some_and(is_service)) {
        return Some(Reason::ServiceFollowUp);
    }
    if same_caller && a0 == b0 {
        return Some(Reason::CallerBurst);
    }
    None
}

/// Group episodes into activities, newest first (by their first Start); each activity's
/// members are oldest first. Only episodes of one account and region whose minutes come within
/// `NEAR_MINUTES` are compared, by a sweep in Start order.
pub fn group(episodes: &[Episode]) -> Vec<Activity> {
    let mut parent: Vec<usize> = (0..episodes.len()).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    let mut reasons: Vec<(usize, usize, Reason)> = Vec::new();
    let mut by_place: BTreeMap<(&str, &str), Vec<usize>> = BTreeMap::new();
    for (i, e) in episodes.iter().enumerate() {
        by_place
            .entry((&e.start.recipient_account_id, &e.start.aws_region))
            .or_default()
            .push(i);
    }
    for mut place in by_place.into_values() {
        place.sort_by_key(|&i| (episodes[i].start_minute, i));
        // Episodes still open (their minutes end at most NEAR_MINUTES before the next Start).
        let mut active: Vec<usize> = Vec::new();
        for &i in &place {
            let start = episodes[i].start_minute;
            active.retain(|&j| episodes[j].own_minutes().1.0 + NEAR_MINUTES >= start.0);
            for &j in &active {
                if let Some(reason) = related(&episodes[j], &episodes[i]) {
                    reasons.push((j, i, reason));
                    let (rj, ri) = (root(&mut parent, j), root(&mut parent, i));
                    parent[ri.max(rj)] = ri.min(rj);
                }
            }
            active.push(i);
        }
    }
    let mut groups: BTreeMap<usize, Activity> = BTreeMap::new();
    for (i, e) in episodes.iter().enumerate() {
        let r = root(&mut parent, i);
        let (start, end) = e.own_minutes();
        let a = groups.entry(r).or_insert(Activity {
            members: Vec::new(),
            start,
            end,
            reasons: BTreeSet::new(),
        });
        a.members.push(i);
        a.start = a.start.min(start);
        a.end = a.end.max(end);
    }
    for (i, _, reason) in reasons {
        let r = root(&mut parent, i);
        if let Some(a) = groups.get_mut(&r) {
            a.reasons.insert(reason);
        }
    }
    let mut activities: Vec<Activity> = groups.into_values().collect();
    for a in &mut activities {
        a.members.sort_by(|&x, &y| {
            (episodes[x].start_minute, episodes[x].shared_event_id())
                .cmp(&(episodes[y].start_minute, episodes[y].shared_event_id()))
        });
    }
    activities.sort_by(|a, b| {
        let first = |a: &Activity| episodes[a.members[0]].shared_event_id().to_owned();
        b.start.cmp(&a.start).then_with(|| first(a).cmp(&first(b)))
    });
    activities
}

/// How alarming an activity is, from its Insights: the parts add up to `score`.
///
/// - `rarity`: the smallest tail probability of its Insights' explanations, as
///   `-log10(p) / 30` (0 to 10; 0 without an explanation);
/// - `magnitude`: the largest change, `log10(Insight average / baseline average)` (0 to 6; 4
///   for an API with no call in the baseline);
/// - `new_api`: 2 when an Insight's API had no call in its baseline;
/// - `new_caller`: 2 when a top caller of an Insight is not among its baseline's callers;
/// - `errors`: 1 per error-rate Insight, at most 3.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Severity {
    pub score: f64,
    pub rarity: f64,
    pub magnitude: f64,
    pub new_api: bool,
    pub new_caller: bool,
    pub errors: usize,
}

pub fn severity(episodes: &[Episode], a: &Activity) -> Severity {
    let mut s = Severity::default();
    for e in a.members.iter().map(|&i| &episodes[i]) {
        if let Some(x) = &e.explanation {
            let p = x.tail_probability;
            let rarity = if p > 0.0 && p.is_finite() {
                (-p.log10() / 30.0).clamp(0.0, 10.0)
            } else {
                10.0
            };
            s.rarity = s.rarity.max(rarity);
        }
        let baseline = e.baseline_average();
        let average = e.statistics().insight.average;
        let magnitude = if baseline > 0.0 {
            (average / baseline).log10().clamp(0.0, 6.0)
        } else {
            s.new_api = true;
            4.0
        };
        s.magnitude = s.magnitude.max(magnitude);
        if let Some(caller) = top_caller(e) {
            let known = e
                .attributions()
                .iter()
                .filter(|x| x.attribute == "userIdentityArn")
                .any(|x| x.baseline.iter().any(|v| v.value == caller));
            s.new_caller |= !known;
        }
        if e.is_error_rate() {
            s.errors += 1;
        }
    }
    s.score = s.rarity
        + s.magnitude
        + if s.new_api { 2.0 } else { 0.0 }
        + if s.new_caller { 2.0 } else { 0.0 }
        + s.errors.min(3) as f64;
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::insight::*;

    /// An episode: (id, account, source, name, error code, start minute, minutes, top caller).
    type Spec<'a> = (
        &'a str,
        &'a str,
        &'a str,
        &'a str,
        Option<&'a str>,
        i64,
        i64,
        &'a str,
    );

    fn episode(spec: Spec<'_>) -> Episode {
        let (id, account, source, name, code, start, minutes, caller) = spec;
        let attributions = if caller.is_empty() {
            vec![]
        } else {
            vec![Attribution {
                attribute: "userIdentityArn".into(),
                insight: vec![AttributedValue {
                    value: caller.into(),
                    average: 5.0,
                }],
                baseline: vec![],
            }]
        };
        let record = |state: &str| {
            let mut r = test_record(id, state, "us-east-1", name, &Minute(start).to_rfc3339());
            r.recipient_account_id = account.into();
            let d = &mut r.insight_details;
            d.event_source = source.into();
            if let Some(code) = code {
                d.insight_type = "ApiErrorRateInsight".into();
                d.error_code = Some(code.into());
            }
            d.insight_context.statistics.insight_duration = 1;
            d.insight_context.attributions = attributions.clone();
            r
        };
        Episode {
            start: record("Start"),
            end: Some(record("End")),
            explanation: None,
            start_minute: Minute(start),
            end_minute: Some(Minute(start + minutes)),
        }
    }

    const A: &str = "123456789012";
    const B: &str = "210987654321";
    const SM: &str = "secretsmanager.amazonaws.com";
    const SSM: &str = "ssm.amazonaws.com";
    const BERT: &str = "arn:aws:iam::123456789012:user/bert";
    const EVE: &str = "arn:aws:iam::123456789012:user/eve";

    #[test]
    fn related_follows_the_documented_rule() {
        let cases: [(Spec<'_>, Spec<'_>, Option<Reason>); 10] = [
            // A call rate and the error rate of the same API, same minutes.
            (
                ("a", A, SSM, "PutParameter", None, 100, 1, BERT),
                (
                    "b",
                    A,
                    SSM,
                    "PutParameter",
                    Some("ThrottlingException"),
                    100,
                    1,
                    BERT,
                ),
                Some(Reason::SameApi),
            ),
            // CreateSecret and PutSecretValue by one caller in one minute.
            (
                ("a", A, SM, "CreateSecret", None, 100, 1, BERT),
                ("b", A, SM, "PutSecretValue", None, 100, 1, BERT),
                Some(Reason::SameCallerSameService),
            ),
            // The service's own follow-up a minute after the user's call.
            (
                ("a", A, SM, "DeleteSecret", None, 100, 1, BERT),
                ("b", A, SM, "StartSecretVersionDelete", None, 101, 1, SM),
                Some(Reason::ServiceFollowUp),
            ),
            // One caller across services, starting in the same minute.
            (
                ("a", A, SM, "DeleteSecret", None, 100, 1, BERT),
                (
                    "b",
                    A,
                    SSM,
                    "DescribeParameters",
                    Some("ThrottlingException"),
                    100,
                    2,
                    BERT,
                ),
                Some(Reason::CallerBurst),
            ),
            // The same caller on two services a minute apart: two things.
            (
                ("a", A, SM, "CreateSecret", None, 100, 1, BERT),
                ("b", A, SSM, "PutParameter", None, 101, 1, BERT),
                None,
            ),
            // Two callers on one service: two things.
            (
                ("a", A, SM, "CreateSecret", None, 100, 1, BERT),
                ("b", A, SM, "PutSecretValue", None, 100, 1, EVE),
                None,
            ),
            // The same API too far apart.
            (
                ("a", A, SSM, "PutParameter", None, 100, 1, BERT),
                ("b", A, SSM, "PutParameter", None, 104, 1, BERT),
                None,
            ),
            // ... but two minutes apart is near.
            (
                ("a", A, SSM, "PutParameter", None, 100, 1, BERT),
                ("b", A, SSM, "PutParameter", None, 103, 1, BERT),
                Some(Reason::SameApi),
            ),
            // Another account never joins.
            (
                ("a", A, SSM, "PutParameter", None, 100, 1, BERT),
                ("b", B, SSM, "PutParameter", None, 100, 1, BERT),
                None,
            ),
            // No attributed caller: no caller rule.
            (
                ("a", A, SM, "CreateSecret", None, 100, 1, ""),
                ("b", A, SM, "PutSecretValue", None, 100, 1, ""),
                None,
            ),
        ];
        for (a, b, want) in cases {
            let (ea, eb) = (episode(a), episode(b));
            assert_eq!(related(&ea, &eb), want, "{a:?} / {b:?}");
            assert_eq!(related(&eb, &ea), want, "symmetric: {b:?} / {a:?}");
        }
    }

    #[test]
    fn activities_are_connected_groups_newest_first() {
        let specs: [Spec<'_>; 8] = [
            ("put", A, SSM, "PutParameter", None, 100, 1, BERT),
            (
                "put-err",
                A,
                SSM,
                "PutParameter",
                Some("ThrottlingException"),
                100,
                1,
                BERT,
            ),
            ("create", A, SM, "CreateSecret", None, 99, 1, BERT),
            ("value", A, SM, "PutSecretValue", None, 99, 1, BERT),
            ("delete", A, SM, "DeleteSecret", None, 110, 1, BERT),
            (
                "follow",
                A,
                SM,
                "StartSecretVersionDelete",
                None,
                111,
                1,
                SM,
            ),
            ("param-del", A, SSM, "DeleteParameter", None, 110, 1, BERT),
            ("other", B, SM, "DeleteSecret", None, 110, 1, BERT),
        ];
        let episodes: Vec<Episode> = specs.into_iter().map(episode).collect();
        let activities = group(&episodes);
        let names: Vec<Vec<&str>> = activities
            .iter()
            .map(|a| {
                a.members
                    .iter()
                    .map(|&i| episodes[i].shared_event_id())
                    .collect()
            })
            .collect();
        assert_eq!(
            names,
            vec![
                vec!["delete", "param-del", "follow"],
                vec!["other"],
                vec!["put", "put-err"],
                vec!["create", "value"],
            ]
        );
        // Severity: every test Insight is 60x its baseline, by a caller its baseline lacks.
        let s = severity(&episodes, &activities[2]);
        assert_eq!((s.errors, s.new_api, s.new_caller), (1, false, true));
        assert!((s.magnitude - 60f64.log10()).abs() < 1e-9, "{s:?}");
        assert!(
            (s.score - (60f64.log10() + 2.0 + 1.0)).abs() < 1e-9,
            "{s:?}"
        );
        assert_eq!(activities[0].start, Minute(110));
        assert_eq!(activities[0].end, Minute(112));
        assert_eq!(
            activities[0].reasons,
            BTreeSet::from([Reason::ServiceFollowUp, Reason::CallerBurst])
        );
    }
}
