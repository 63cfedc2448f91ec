//! Object keys, exactly as CloudTrail names them in S3.
//!
//! ```text
//! [prefix/]AWSLogs/[o-org/]ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/ACCOUNT_CloudTrail_REGION_YYYYMMDDTHHmmZ_UNIQUE16.json.gz
//! [prefix/]AWSLogs/[o-org/]ACCOUNT/CloudTrail-Digest/REGION/YYYY/MM/DD/ACCOUNT_CloudTrail-Digest_REGION_TRAIL_REGION_YYYYMMDDTHHMMSSZ.json.gz
//! ```
//!
//! The date folders and the file-name time are the *delivery* time, not the eventTime.

use crate::clock::{self, Minute};

/// Where a trail writes: bucket (named inside digests), optional key prefix, optional
/// organization id, and the trail's name.
#[derive(Debug, Clone)]
pub struct Trail {
    pub bucket: String,
    pub prefix: Option<String>,
    pub org_id: Option<String>,
    pub name: String,
}

impl Trail {
    fn account_root(&self, account: &str) -> String {
        let mut key = String::new();
        if let Some(prefix) = &self.prefix {
            key.push_str(prefix.trim_matches('/'));
            key.push('/');
        }
        key.push_str("AWSLogs/");
        if let Some(org) = &self.org_id {
            key.push_str(org);
            key.push('/');
        }
        key.push_str(account);
        key
    }

    /// The key of a log file delivered at `delivered`.
    pub fn log_key(&self, account: &str, region: &str, delivered: Minute, unique: &str) -> String {
        format!(
            "{}/CloudTrail/{region}/{}/{account}_CloudTrail_{region}_{}_{unique}.json.gz",
            self.account_root(account),
            clock::folder_date(delivered),
            clock::file_stamp(delivered),
        )
    }

    /// The key of a digest file whose period ends at `end` (minute) + `second`.
    pub fn digest_key(&self, account: &str, region: &str, end: Minute, second: u32) -> String {
        let stamp = clock::file_stamp(end).replace('Z', &format!("{second:02}Z"));
        format!(
            "{}/CloudTrail-Digest/{region}/{}/{account}_CloudTrail-Digest_{region}_{}_{region}_{stamp}.json.gz",
            self.account_root(account),
            clock::folder_date(end),
            self.name,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::minute_of_date;
    use chrono::NaiveDate;

    #[test]
    fn keys_match_cloudtrail_layout() {
        let minute = minute_of_date(NaiveDate::from_ymd_opt(2019, 11, 1).unwrap()) + 5;
        let org = Trail {
            bucket: "b".into(),
            prefix: None,
            org_id: Some("o-a1b2c3d4e5".into()),
            name: "org-trail".into(),
        };
        let prefixed = Trail {
            prefix: Some("/logs/ct/".into()),
            org_id: None,
            ..org.clone()
        };
        let cases = [
            (
                org.log_key("123456789012", "us-east-1", minute, "AbCdEfGhIjKlMnOp"),
                "AWSLogs/o-a1b2c3d4e5/123456789012/CloudTrail/us-east-1/2019/11/01/123456789012_CloudTrail_us-east-1_20191101T0005Z_AbCdEfGhIjKlMnOp.json.gz",
            ),
            (
                prefixed.log_key("123456789012", "eu-west-1", minute, "AbCdEfGhIjKlMnOp"),
                "logs/ct/AWSLogs/123456789012/CloudTrail/eu-west-1/2019/11/01/123456789012_CloudTrail_eu-west-1_20191101T0005Z_AbCdEfGhIjKlMnOp.json.gz",
            ),
            (
                org.digest_key("123456789012", "us-east-1", minute, 31),
                "AWSLogs/o-a1b2c3d4e5/123456789012/CloudTrail-Digest/us-east-1/2019/11/01/123456789012_CloudTrail-Digest_us-east-1_org-trail_us-east-1_20191101T000531Z.json.gz",
            ),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
    }
}
