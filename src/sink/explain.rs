//! Explanations -> JSON Lines files beside the Insights, one per account, region and day of the
//! episodes' starts, under Hive-style folders so DuckDB or Athena can read them as a table:
//! `explanations/account=ACCOUNT/region=REGION/date=YYYY-MM-DD/explanations.jsonl`.

use crate::model::explanation::Explanation;
use chrono::NaiveDate;
use std::collections::BTreeMap;

/// The key of the explanations of one account, region and day.
pub fn file_key(account: &str, region: &str, day: NaiveDate) -> String {
    format!("explanations/account={account}/region={region}/date={day}/explanations.jsonl")
}

/// (key, bytes) for every file to write, in key order.
pub fn plan_files(explanations: &[Explanation]) -> Vec<(String, Vec<u8>)> {
    let mut files: BTreeMap<String, Vec<&Explanation>> = BTreeMap::new();
    for e in explanations {
        let day = crate::model::parse_day(e.start_time.get(..10).unwrap_or_default())
            .unwrap_or(NaiveDate::MIN);
        files
            .entry(file_key(&e.recipient_account_id, &e.aws_region, day))
            .or_default()
            .push(e);
    }
    files
        .into_iter()
        .map(|(key, mut lines)| {
            lines.sort_by(|a, b| {
                (&a.start_time, &a.shared_event_id).cmp(&(&b.start_time, &b.shared_event_id))
            });
            let mut bytes = Vec::new();
            for line in lines {
                // Explanations hold only strings and finite numbers.
                serde_json::to_writer(&mut bytes, line).expect("serialising an explanation");
                bytes.push(b'\n');
            }
            (key, bytes)
        })
        .collect()
}
