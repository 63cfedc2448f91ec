//! The CloudTrail layout: prefixes, organization trails, sibling folders, which day folders
//! are read, late delivery, de-duplication, and where Insights are written.

use crate::support::*;
use serde_json::Value;

/// One call a day at 10:00 for the 7 days before `spike_day`, then `burst` calls in the minute
/// `spike_minute` of `spike_day`, all in folders named by `folder_of`.
fn history_and_burst(
    account: &str,
    region: &str,
    spike_day: &str,
    spike_minute: u32,
    burst: u32,
) -> Vec<(String, Vec<Value>)> {
    let spike = chrono::NaiveDate::parse_from_str(spike_day, "%Y-%m-%d").unwrap();
    let mut days = Vec::new();
    for back in (1..=7).rev() {
        let day = (spike - chrono::Duration::days(back)).to_string();
        let id = 1000 + back as u64;
        days.push((
            day.clone(),
            vec![call(account, region, &at(&day, 600, 0), "RunInstances", id)],
        ));
    }
    let burst = (0..burst)
        .map(|i| {
            call(
                account,
                region,
                &at(spike_day, spike_minute, i),
                "RunInstances",
                2000 + u64::from(i),
            )
        })
        .collect();
    days.push((spike_day.to_owned(), burst));
    days
}

/// Write `history_and_burst` for `account` and `records_region` into the plain (no prefix, no
/// organization) folders of `folder_region`.
fn write_history_and_burst(
    tree: &Tree,
    account: &str,
    records_region: &str,
    folder_region: &str,
    spike: (&str, u32, u32),
) {
    let (spike_day, spike_minute, burst) = spike;
    for (day, records) in history_and_burst(account, records_region, spike_day, spike_minute, burst)
    {
        tree.write_log(
            &log_key("", None, account, folder_region, &day, "x"),
            &records,
        );
    }
}

/// Analyse `tree` from `from` to `to` into a new directory; the run must succeed.
fn analyze_ok(tree: &Tree, from: &str, to: &str, extra: &[&str]) -> (tempfile::TempDir, Run) {
    let out = tempfile::tempdir().unwrap();
    let mut args = vec!["--from", from, "--to", to];
    args.extend_from_slice(extra);
    let run = analyze(tree.path(), out.path(), &args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    (out, run)
}

#[test]
fn org_trails_prefixes_and_sibling_folders() {
    let tree = Tree::new();
    let org = Some("o-a1b2c3d4e5");
    for (day, records) in history_and_burst(ACCOUNT, "eu-west-1", "2019-11-08", 300, 12) {
        tree.write_log(
            &log_key("audit/trails/", org, ACCOUNT, "eu-west-1", &day, "x"),
            &records,
        );
        // Garbage in every sibling folder: reading any of it would be reported as skipped.
        for sibling in [
            "CloudTrail-Digest",
            "CloudTrail-Insight",
            "CloudTrail-NetworkActivity",
        ] {
            let key = log_key("audit/trails/", org, ACCOUNT, "eu-west-1", &day, "y")
                .replace("/CloudTrail/", &format!("/{sibling}/"));
            tree.write_raw(&key, b"not a log");
        }
    }
    let digest = log_key(
        "audit/trails/",
        org,
        ACCOUNT,
        "eu-west-1",
        "2019-11-08",
        "d",
    )
    .replace("_CloudTrail_", "_CloudTrail-Digest_");
    tree.write_raw(&digest, b"{}");
    let (out, run) = analyze_ok(&tree, "2019-11-08", "2019-11-08", &[]);
    assert_eq!(run.summary["objects_read"], 8, "{:#}", run.summary);
    assert_eq!(
        run.summary["files_ignored"]["a CloudTrail digest file, not a log file"],
        1
    );
    let found = insights(out.path());
    assert_eq!(found.len(), 2, "{found:#?}");
    let (key, start) = &found[0];
    assert!(
        key.starts_with(&format!("AWSLogs/o-a1b2c3d4e5/{ACCOUNT}/CloudTrail-Insight/eu-west-1/2019/11/08/{ACCOUNT}_CloudTrail-Insight_eu-west-1_20191108T2359Z_")),
        "{key}"
    );
    assert_eq!(start["eventTime"], "2019-11-08T05:00:00Z");
    assert_eq!(
        start["insightDetails"]["insightContext"]["statistics"]["insight"]["average"],
        12.0
    );
}

#[test]
fn only_the_needed_day_folders_are_read() {
    let tree = Tree::new();
    write_history_and_burst(
        &tree,
        ACCOUNT,
        "us-east-1",
        "us-east-1",
        ("2019-11-20", 300, 12),
    );
    // Broken files before the baseline and after the next day: never listed, never read.
    for day in ["2019-11-12", "2019-11-01", "2019-11-22", "2020-01-01"] {
        tree.write_raw(
            &log_key("", None, ACCOUNT, "us-east-1", day, "broken"),
            b"broken",
        );
    }
    let (out, run) = analyze_ok(&tree, "2019-11-20", "2019-11-20", &[]);
    assert_eq!(run.summary["objects_listed"], 8);
    assert_eq!(insights(out.path()).len(), 2);
}

#[test]
fn records_delivered_in_the_next_days_folder_count_for_their_own_minute() {
    let tree = Tree::new();
    let days = history_and_burst(ACCOUNT, "us-east-1", "2019-11-08", 23 * 60 + 58, 12);
    for (day, records) in &days[..7] {
        tree.write_log(&log_key("", None, ACCOUNT, "us-east-1", day, "x"), records);
    }
    // The burst at 23:58 is delivered after midnight, into the next day's folder.
    tree.write_log(
        &log_key("", None, ACCOUNT, "us-east-1", "2019-11-09", "late"),
        &days[7].1,
    );
    let (out, run) = analyze_ok(&tree, "2019-11-08", "2019-11-08", &[]);
    let found = insights(out.path());
    assert_eq!(
        found.len(),
        1,
        "the End is after the analysed day: {found:#?}"
    );
    assert_eq!(found[0].1["eventTime"], "2019-11-08T23:58:00Z");
    assert!(found[0].0.contains("/2019/11/08/"));
    assert_eq!(run.summary["open_insights"], 1);
}

#[test]
fn the_same_event_delivered_twice_is_counted_once() {
    let tree = Tree::new();
    for (day, records) in history_and_burst(ACCOUNT, "us-east-1", "2019-11-08", 300, 6) {
        tree.write_log(
            &log_key("", None, ACCOUNT, "us-east-1", &day, "acct"),
            &records,
        );
        // The organization trail delivers the same events again.
        tree.write_log(
            &log_key("", Some("o-zzzzzzzzzz"), ACCOUNT, "us-east-1", &day, "org"),
            &records,
        );
    }
    let (out, run) = analyze_ok(&tree, "2019-11-08", "2019-11-08", &[]);
    assert_eq!(run.summary["write_events"], 26);
    assert_eq!(run.summary["duplicates_dropped"], 13);
    let found = insights(out.path());
    assert_eq!(
        found[0].1["insightDetails"]["insightContext"]["statistics"]["insight"]["average"],
        6.0
    );
}

#[test]
fn records_are_grouped_by_their_own_account_and_region_and_filters_prune() {
    let tree = Tree::new();
    // Filed under us-east-1, but the records say us-west-2.
    write_history_and_burst(
        &tree,
        ACCOUNT,
        "us-west-2",
        "us-east-1",
        ("2019-11-08", 300, 12),
    );
    write_history_and_burst(
        &tree,
        OTHER_ACCOUNT,
        "us-east-1",
        "us-east-1",
        ("2019-11-08", 300, 12),
    );
    let (out, run) = analyze_ok(&tree, "2019-11-08", "2019-11-08", &[]);
    let regions: Vec<(String, String)> = insights(out.path())
        .iter()
        .map(|(_, r)| {
            (
                r["recipientAccountId"].as_str().unwrap().to_owned(),
                r["awsRegion"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(regions.len(), 4, "{regions:?} {:#}", run.summary);
    assert!(regions.contains(&(ACCOUNT.to_owned(), "us-west-2".to_owned())));
    assert!(regions.contains(&(OTHER_ACCOUNT.to_owned(), "us-east-1".to_owned())));

    let filtered = tempfile::tempdir().unwrap();
    let run = analyze(
        tree.path(),
        filtered.path(),
        &[
            "--from",
            "2019-11-08",
            "--to",
            "2019-11-08",
            "--accounts",
            OTHER_ACCOUNT,
        ],
    );
    assert_eq!(run.code, 0);
    assert_eq!(
        run.summary["objects_listed"], 8,
        "the other account is not even listed"
    );
    assert!(
        insights(filtered.path())
            .iter()
            .all(|(_, r)| r["recipientAccountId"] == OTHER_ACCOUNT)
    );
}

#[test]
fn a_trail_younger_than_seven_days_reports_the_baseline_it_has() {
    let tree = Tree::new();
    // Logging started on 2019-11-05; the burst is on 2019-11-07 at 05:00.
    for (day, records) in history_and_burst(ACCOUNT, "us-east-1", "2019-11-07", 300, 12)
        .into_iter()
        .skip(5)
    {
        tree.write_log(
            &log_key("", None, ACCOUNT, "us-east-1", &day, "x"),
            &records,
        );
    }
    let out = tempfile::tempdir().unwrap();
    let run = analyze(tree.path(), out.path(), &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let found = insights(out.path());
    assert_eq!(found.len(), 2, "{found:#?}");
    let stats = &found[0].1["insightDetails"]["insightContext"]["statistics"];
    // History counts from 2019-11-05T00:00Z: 2 days and 300 minutes before the start.
    assert_eq!(stats["baselineDuration"], 2 * 1440 + 300);
    assert_eq!(
        stats["baseline"]["average"], 0.0006289308,
        "2 calls in 3180 minutes"
    );
}
