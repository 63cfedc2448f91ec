//! Insight records -> gzip JSON files where AWS puts them:
//! `AWSLogs/[o-id/]ACCOUNT/CloudTrail-Insight/REGION/YYYY/MM/DD/ACCOUNT_CloudTrail-Insight_REGION_YYYYMMDDT2359Z_UNIQUE.json.gz`,
//! each `{"Records":[...]}` in compact JSON, as CloudTrail writes its files.
//!
//! There is one file per account, region and UTC day of the records' `eventTime`, so the day
//! folder always matches the records inside. The file name is a pure function of those three
//! (the time stamp is the day's last minute, after every record in it; the 16-character unique
//! part is derived from a hash), so a re-run replaces a file instead of adding a second one. The
//! gzip header carries no time stamp or name: the same records give the same bytes.

use crate::model::insight::InsightRecord;
use crate::model::{Minute, parse_day};
use chrono::{Datelike, NaiveDate};
use flate2::{Compression, GzBuilder};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;

/// One output file: its key under the output root and its records, in a stable order.
#[derive(Debug, Clone, PartialEq)]
pub struct InsightFile {
    pub key: String,
    pub account: String,
    pub region: String,
    pub day: NaiveDate,
    pub records: Vec<InsightRecord>,
}

/// The key of the file holding one account's Insights of one region and day.
pub fn file_key(org_id: Option<&str>, account: &str, region: &str, day: NaiveDate) -> String {
    let org = org_id.map(|o| format!("{o}/")).unwrap_or_default();
    let stamp = Minute::start_of_day(day).plus(23 * 60 + 59).to_file_stamp();
    format!(
        "AWSLogs/{org}{account}/CloudTrail-Insight/{region}/{:04}/{:02}/{:02}/{account}_CloudTrail-Insight_{region}_{stamp}_{}.json.gz",
        day.year(),
        day.month(),
        day.day(),
        unique_part(account, region, day),
    )
}

/// 16 characters of [A-Za-z0-9], derived from the file's identity.
fn unique_part(account: &str, region: &str, day: NaiveDate) -> String {
    const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let id = uuid::Uuid::new_v5(
        &crate::model::ID_NAMESPACE,
        format!("insight-file|{account}|{region}|{day}").as_bytes(),
    );
    let mut n = id.as_u128();
    (0..16)
        .map(|_| {
            let c = ALPHABET[(n % 62) as usize] as char;
            n /= 62;
            c
        })
        .collect()
}

/// Group records into files by account, region and `eventTime` day. `orgs` maps an account to
/// the organization folder its logs came from, mirrored in the output as AWS does.
pub fn plan_files(
    records: Vec<InsightRecord>,
    orgs: &BTreeMap<String, String>,
) -> Vec<InsightFile> {
    let mut groups: BTreeMap<(String, String, NaiveDate), Vec<InsightRecord>> = BTreeMap::new();
    for record in records {
        let day =
            parse_day(record.event_time.get(..10).unwrap_or_default()).unwrap_or(NaiveDate::MIN);
        groups
            .entry((
                record.recipient_account_id.clone(),
                record.aws_region.clone(),
                day,
            ))
            .or_default()
            .push(record);
    }
    groups
        .into_iter()
        .map(|((account, region, day), mut records)| {
            records.sort_by(|a, b| record_order(a).cmp(&record_order(b)));
            InsightFile {
                key: file_key(
                    orgs.get(&account).map(String::as_str),
                    &account,
                    &region,
                    day,
                ),
                account,
                region,
                day,
                records,
            }
        })
        .collect()
}

fn record_order(r: &InsightRecord) -> (&str, &str, &str, &str, Option<&str>, bool) {
    let d = &r.insight_details;
    (
        &r.event_time,
        &d.event_source,
        &d.event_name,
        &d.insight_type,
        d.error_code.as_deref(),
        r.is_start(),
    )
}

#[derive(Serialize)]
struct Envelope<'r> {
    #[serde(rename = "Records")]
    records: &'r [InsightRecord],
}

/// `{"Records":[...]}` as compact JSON, gzip-compressed without a time stamp.
pub fn encode_file(records: &[InsightRecord]) -> Vec<u8> {
    let mut gz = GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), Compression::default());
    // Writing to a Vec cannot fail, and the records hold only strings and finite numbers.
    serde_json::to_writer(&mut gz, &Envelope { records })
        .and_then(|()| gz.flush().map_err(serde_json::Error::io))
        .expect("serialising Insight records into memory");
    gz.finish().expect("finishing a gzip stream in memory")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_aws_insights_layout() {
        let day = parse_day("2019-11-07").unwrap();
        let key = file_key(None, "123456789012", "us-east-1", day);
        let name = key.rsplit('/').next().unwrap();
        assert!(key.starts_with("AWSLogs/123456789012/CloudTrail-Insight/us-east-1/2019/11/07/"));
        assert!(name.starts_with("123456789012_CloudTrail-Insight_us-east-1_20191107T2359Z_"));
        assert_eq!(
            name.len(),
            "123456789012_CloudTrail-Insight_us-east-1_20191107T2359Z_".len() + 16 + 8
        );
        assert_eq!(key, file_key(None, "123456789012", "us-east-1", day));
        assert_ne!(key, file_key(None, "123456789012", "us-east-2", day));
        assert!(
            file_key(Some("o-abc"), "123456789012", "us-east-1", day)
                .starts_with("AWSLogs/o-abc/123456789012/")
        );
    }

    #[test]
    fn encoding_is_deterministic_gzip_of_records() {
        let a = encode_file(&[]);
        assert_eq!(a, encode_file(&[]));
        let json = crate::decode::gzip::gunzip_capped(&a, 1 << 20).unwrap();
        assert_eq!(json, b"{\"Records\":[]}");
    }
}
