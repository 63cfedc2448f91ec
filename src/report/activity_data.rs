//! The activities of a run as data (pure): the Insight records and explanations a day-step
//! wrote, paired (`pair`) and grouped (`activity::group`) exactly as the page groups them, as
//! one `sink::activities::ActivityLine` each, for the sink to write under `activities/`.
//!
//! Episodes are grouped within their partition-day (account, region and the day of their
//! Start): a day's activities then depend only on that day's Insights, so a nightly run writes
//! the same bytes as a backfill. The page may join two Insights either side of midnight into
//! one activity; the data files keep them as two, one on each day.

use super::activity::{self, Reason};
use super::{Episode, pair};
use crate::model::explanation::Explanation;
use crate::model::insight::InsightRecord;
use crate::sink::activities::ActivityLine;
use chrono::NaiveDate;
use std::collections::{BTreeMap, BTreeSet};

/// A stable code for each reason (a column value).
pub fn reason_code(reason: Reason) -> &'static str {
    match reason {
        Reason::SameApi => "same_api",
        Reason::SameCallerSameService => "same_caller_same_service",
        Reason::ServiceFollowUp => "service_follow_up",
        Reason::CallerBurst => "caller_burst",
    }
}

/// The activities of `records` (Starts and Ends of the same run, explanations attached by
/// `sharedEventID`), grouped per account, region and Start day, in no particular order.
pub fn activity_lines(
    records: &[InsightRecord],
    explanations: &[Explanation],
) -> Vec<ActivityLine> {
    let paired = pair(records.to_vec(), explanations.to_vec());
    let mut days: BTreeMap<(String, String, NaiveDate), Vec<Episode>> = BTreeMap::new();
    for e in paired.episodes {
        days.entry((
            e.start.recipient_account_id.clone(),
            e.start.aws_region.clone(),
            e.start_minute.day(),
        ))
        .or_default()
        .push(e);
    }
    let mut lines = Vec::new();
    for episodes in days.values() {
        for a in activity::group(episodes) {
            lines.push(line(episodes, &a));
        }
    }
    lines
}

fn line(episodes: &[Episode], a: &activity::Activity) -> ActivityLine {
    let members: Vec<&Episode> = a.members.iter().map(|&i| &episodes[i]).collect();
    let set = |f: &dyn Fn(&Episode) -> Option<String>| -> Vec<String> {
        members
            .iter()
            .filter_map(|e| f(e))
            .collect::<BTreeSet<String>>()
            .into_iter()
            .collect()
    };
    let severity = activity::severity(episodes, a);
    let first = members[0];
    ActivityLine {
        recipient_account_id: first.start.recipient_account_id.clone(),
        aws_region: first.start.aws_region.clone(),
        start_time: a.start.to_rfc3339(),
        end_time: a.end.to_rfc3339(),
        open: members.iter().any(|e| e.end.is_none()),
        shared_event_ids: set(&|e| Some(e.shared_event_id().to_owned())),
        apis: set(&|e| {
            let d = &e.start.insight_details;
            Some(format!("{}:{}", d.event_source, d.event_name))
        }),
        event_sources: set(&|e| Some(e.start.insight_details.event_source.clone())),
        event_names: set(&|e| Some(e.start.insight_details.event_name.clone())),
        insight_types: set(&|e| Some(e.start.insight_details.insight_type.clone())),
        top_callers: set(&|e| activity::top_caller(e).map(str::to_owned)),
        // Two decimals, as the page ranks them: the same digits whatever the platform.
        severity_score: round2(severity.score),
        rarity: round2(severity.rarity),
        magnitude: round2(severity.magnitude),
        new_api: severity.new_api,
        new_caller: severity.new_caller,
        error_rate_insights: severity.errors as u64,
        reasons: a
            .reasons
            .iter()
            .map(|&r| reason_code(r).to_owned())
            .collect(),
        reason_texts: a.reasons.iter().map(|r| r.text().to_owned()).collect(),
    }
}

fn round2(x: f64) -> f64 {
    if x.is_finite() {
        (x * 100.0).round() / 100.0
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::insight::test_record;
    use crate::sink::activities::plan_files;

    fn ids(lines: &[ActivityLine]) -> BTreeSet<Vec<String>> {
        lines.iter().map(|l| l.shared_event_ids.clone()).collect()
    }

    #[test]
    fn episodes_are_grouped_within_their_partition_day_as_the_page_groups_them() {
        let r = |id, state, region, name, time| test_record(id, state, region, name, time);
        let records = vec![
            // One API, twice in a row: one activity.
            r(
                "b",
                "Start",
                "us-east-1",
                "RunInstances",
                "2019-11-07T10:05:00Z",
            ),
            r(
                "b",
                "End",
                "us-east-1",
                "RunInstances",
                "2019-11-07T10:07:00Z",
            ),
            r(
                "a",
                "Start",
                "us-east-1",
                "RunInstances",
                "2019-11-07T10:00:00Z",
            ),
            r(
                "a",
                "End",
                "us-east-1",
                "RunInstances",
                "2019-11-07T10:04:00Z",
            ),
            // Another API in the same minutes: its own activity.
            r(
                "c",
                "Start",
                "us-east-1",
                "StopInstances",
                "2019-11-07T10:00:00Z",
            ),
            // The same API in another region: its own activity.
            r(
                "d",
                "Start",
                "eu-west-1",
                "RunInstances",
                "2019-11-07T10:01:00Z",
            ),
            // Either side of midnight: the page would join them, the days keep them apart.
            r(
                "e",
                "Start",
                "us-east-1",
                "RunInstances",
                "2019-11-07T23:58:00Z",
            ),
            r(
                "e",
                "End",
                "us-east-1",
                "RunInstances",
                "2019-11-08T00:00:00Z",
            ),
            r(
                "f",
                "Start",
                "us-east-1",
                "RunInstances",
                "2019-11-08T00:00:00Z",
            ),
        ];
        let lines = activity_lines(&records, &[]);
        let v = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let expected: BTreeSet<Vec<String>> =
            [v(&["a", "b"]), v(&["c"]), v(&["d"]), v(&["e"]), v(&["f"])].into();
        assert_eq!(ids(&lines), expected);
        let ab = lines
            .iter()
            .find(|l| l.shared_event_ids.len() == 2)
            .unwrap();
        assert_eq!(
            (ab.start_time.as_str(), ab.end_time.as_str()),
            ("2019-11-07T10:00:00Z", "2019-11-07T10:07:00Z")
        );
        assert_eq!(ab.reasons, ["same_api"]);
        assert_eq!(ab.apis, ["ec2.amazonaws.com:RunInstances"]);
        assert!(!ab.open);
        let c = lines.iter().find(|l| l.shared_event_ids == ["c"]).unwrap();
        assert!(c.open && c.reasons.is_empty());
        // The page's grouping, over the episodes of one day, is the same.
        let paired = pair(records.clone(), vec![]);
        let page: BTreeSet<Vec<String>> = activity::group(&paired.episodes)
            .iter()
            .map(|a| {
                let mut ids: Vec<String> = a
                    .members
                    .iter()
                    .map(|&i| paired.episodes[i].shared_event_id().to_owned())
                    .collect();
                ids.sort();
                ids
            })
            .collect();
        let page_expected: BTreeSet<Vec<String>> =
            [v(&["a", "b"]), v(&["c"]), v(&["d"]), v(&["e", "f"])].into();
        assert_eq!(page, page_expected);

        // Files per account, region and first-Start day; the bytes do not depend on the order
        // the records came in.
        let files = plan_files(&lines);
        let keys: Vec<&str> = files.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "activities/account=123456789012/region=eu-west-1/date=2019-11-07/activities.jsonl",
                "activities/account=123456789012/region=us-east-1/date=2019-11-07/activities.jsonl",
                "activities/account=123456789012/region=us-east-1/date=2019-11-08/activities.jsonl",
            ]
        );
        let mut reversed = records;
        reversed.reverse();
        let mut lines_reversed = activity_lines(&reversed, &[]);
        lines_reversed.reverse();
        assert_eq!(plan_files(&lines_reversed), files);
        let text = String::from_utf8(files[1].1.clone()).unwrap();
        let first: ActivityLine = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(first.shared_event_ids, ["a", "b"], "by start, then IDs");
    }
}
