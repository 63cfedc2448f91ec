//! The CloudTrail delivery layout, as pure functions on key segments:
//! `[prefix/]AWSLogs/[o-orgid/]ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/FILE.json.gz`.
//!
//! Both the local walker and the S3 lister use these to decide which folder is an
//! organization, an account or a region, and which file is a log file to read, so the two
//! sources agree on what they accept and what they skip (digests, Insights, other services).

use crate::model::Partition;
use chrono::NaiveDate;
use std::collections::BTreeSet;

/// The folder that starts the CloudTrail layout under an optional prefix.
pub const AWSLOGS: &str = "AWSLogs";
/// The service folder of management and data event logs; its siblings are skipped.
pub const CLOUDTRAIL: &str = "CloudTrail";

/// A 12-digit AWS account ID.
pub fn is_account(segment: &str) -> bool {
    segment.len() == 12 && segment.bytes().all(|b| b.is_ascii_digit())
}

/// An organization ID, `o-` followed by lower-case letters and digits.
pub fn is_org_id(segment: &str) -> bool {
    segment.len() > 2
        && segment.len() <= 64
        && segment.starts_with("o-")
        && segment[2..]
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// A region name such as `us-east-1` or `us-gov-west-1`: lower-case letters, digits and
/// hyphens, starting with a letter and holding at least one hyphen.
pub fn is_region(segment: &str) -> bool {
    !segment.is_empty()
        && segment.len() <= 32
        && segment.as_bytes()[0].is_ascii_lowercase()
        && segment.contains('-')
        && segment
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// What a file in a CloudTrail day folder is, judged by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A log file to read: `*.json.gz` (as delivered) or `*.json` (uncompressed copies).
    Log,
    /// A digest or Insights file that was copied into a `CloudTrail/` folder.
    Foreign(&'static str),
    /// Anything else: not CloudTrail output.
    Other,
}

/// Why a digest file found among the logs is ignored.
pub const DIGEST_FILE: &str = "a CloudTrail digest file, not a log file";
/// Why an Insights file found among the logs is ignored.
pub const INSIGHT_FILE: &str = "a CloudTrail Insights file, not a log file";

/// Whether an ignored file's reason names CloudTrail's own output of another kind (a digest or an
/// Insights file): normal in real trails, so `--strict` does not fail for it.
pub fn is_trail_companion(reason: &str) -> bool {
    reason == DIGEST_FILE || reason == INSIGHT_FILE
}

pub fn classify_file_name(name: &str) -> FileKind {
    // One search for what both companions' names hold (a log file's name has neither).
    if name.contains("_CloudTrail-") {
        if name.contains("_CloudTrail-Digest_") {
            return FileKind::Foreign(DIGEST_FILE);
        }
        if name.contains("_CloudTrail-Insight_") {
            return FileKind::Foreign(INSIGHT_FILE);
        }
    }
    if name.ends_with(".json.gz") || name.ends_with(".json") {
        FileKind::Log
    } else {
        FileKind::Other
    }
}

/// A parsed log object key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogKey {
    pub partition: Partition,
    /// The delivery day of the folder (not the day of the records inside).
    pub day: NaiveDate,
    pub file_name: String,
}

/// Why a key is not a log file to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyProblem {
    NotCloudTrailLayout,
    /// Another service folder next to `CloudTrail/` (Digest, Insight, NetworkActivity, ...).
    SiblingService(String),
    NotALogFile(String),
}

/// A log object key's parts, borrowed from the key: what every object read needs (its folder's
/// account and region) without the allocations of an owned `LogKey`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogKeyParts<'k> {
    /// Everything before `AWSLogs/` (empty or ending in `/`).
    pub prefix: &'k str,
    pub org_id: Option<&'k str>,
    pub account: &'k str,
    pub region: &'k str,
    pub day: NaiveDate,
    pub file_name: &'k str,
}

/// Parse a key relative to the source root. The prefix before `AWSLogs/` may have any depth.
pub fn parse_log_key(key: &str) -> Result<LogKey, KeyProblem> {
    let parts = parse_log_key_parts(key)?;
    Ok(LogKey {
        partition: Partition {
            prefix: parts.prefix.to_string(),
            org_id: parts.org_id.map(str::to_string),
            account: parts.account.to_string(),
            region: parts.region.to_string(),
        },
        day: parts.day,
        file_name: parts.file_name.to_string(),
    })
}

/// `parse_log_key`, borrowing the parts from `key`.
pub fn parse_log_key_parts(key: &str) -> Result<LogKeyParts<'_>, KeyProblem> {
    let at = aws_logs_offset(key).ok_or(KeyProblem::NotCloudTrailLayout)?;
    let prefix = &key[..at];
    let rest = key[at + AWSLOGS.len()..]
        .strip_prefix('/')
        .ok_or(KeyProblem::NotCloudTrailLayout)?;
    // At most eight segments follow `AWSLogs`: the organization, then the seven below.
    let mut segments = [""; 8];
    let mut count = 0;
    for segment in rest.split('/') {
        *segments
            .get_mut(count)
            .ok_or(KeyProblem::NotCloudTrailLayout)? = segment;
        count += 1;
    }
    let mut segments = &segments[..count];
    let org_id = match segments.first() {
        Some(s) if is_org_id(s) => {
            let org_id = *s;
            segments = &segments[1..];
            Some(org_id)
        }
        _ => None,
    };
    let &[account, service, region, year, month, day, file_name] = segments else {
        return Err(KeyProblem::NotCloudTrailLayout);
    };
    if !is_account(account) || !is_region(region) {
        return Err(KeyProblem::NotCloudTrailLayout);
    }
    if service != CLOUDTRAIL {
        return Err(KeyProblem::SiblingService(service.to_string()));
    }
    let day = parse_folder_day(year, month, day).ok_or(KeyProblem::NotCloudTrailLayout)?;
    check_log_file_name(file_name)?;
    Ok(LogKeyParts {
        prefix,
        org_id,
        account,
        region,
        day,
        file_name,
    })
}

/// A log file's name, or why it is not one.
fn check_log_file_name(name: &str) -> Result<(), KeyProblem> {
    match classify_file_name(name) {
        FileKind::Log => Ok(()),
        FileKind::Foreign(why) => Err(KeyProblem::NotALogFile(why.to_string())),
        FileKind::Other => Err(KeyProblem::NotALogFile(
            "not a .json.gz or .json file".to_string(),
        )),
    }
}

/// `parse_log_key_parts` for keys read one after another on a thread, most in the folder of
/// the key before (a reading thread takes a day folder's objects in turn): the folder's part of
/// the last key parsed here is remembered, so a key in the same folder costs a comparison and
/// the check of its file name instead of a parse of every segment.
pub fn parse_log_key_parts_in_turn(key: &str) -> Result<LogKeyParts<'_>, KeyProblem> {
    /// Where a folder's parts lie in its keys, and its day.
    struct Folder {
        folder: String,
        prefix_len: usize,
        org_id: Option<std::ops::Range<usize>>,
        account: std::ops::Range<usize>,
        region: std::ops::Range<usize>,
        day: NaiveDate,
    }
    thread_local! {
        static LAST: std::cell::RefCell<Option<Folder>> = const { std::cell::RefCell::new(None) };
    }
    let folder_len = key.rfind('/').map_or(0, |slash| slash + 1);
    let (folder, file_name) = key.split_at(folder_len);
    let remembered = LAST.with_borrow(|last| {
        let last = last.as_ref().filter(|last| last.folder == folder)?;
        Some(LogKeyParts {
            prefix: &key[..last.prefix_len],
            org_id: last.org_id.clone().map(|r| &key[r]),
            account: &key[last.account.clone()],
            region: &key[last.region.clone()],
            day: last.day,
            file_name,
        })
    });
    if let Some(parts) = remembered {
        return check_log_file_name(file_name).map(|()| parts);
    }
    let parts = parse_log_key_parts(key)?;
    let range = |part: &str| {
        let start = part.as_ptr() as usize - key.as_ptr() as usize;
        start..start + part.len()
    };
    LAST.set(Some(Folder {
        folder: folder.to_owned(),
        prefix_len: parts.prefix.len(),
        org_id: parts.org_id.map(range),
        account: range(parts.account),
        region: range(parts.region),
        day: parts.day,
    }));
    Ok(parts)
}

/// Where the first segment that is exactly `AWSLogs` starts in `key`.
fn aws_logs_offset(key: &str) -> Option<usize> {
    let mut start = 0;
    for segment in key.split('/') {
        if segment == AWSLOGS {
            return Some(start);
        }
        start += segment.len() + 1;
    }
    None
}

/// `YYYY`, `MM`, `DD` folder names to a date.
pub fn parse_folder_day(year: &str, month: &str, day: &str) -> Option<NaiveDate> {
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    if !(digits(year, 4) && digits(month, 2) && digits(day, 2)) {
        return None;
    }
    NaiveDate::from_ymd_opt(year.parse().ok()?, month.parse().ok()?, day.parse().ok()?)
}

/// Which accounts and regions a run reads; `None` means all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartitionFilter {
    pub accounts: Option<BTreeSet<String>>,
    pub regions: Option<BTreeSet<String>>,
    /// One shard of the (account, region) pairs.
    pub shard: Option<Shard>,
}

impl PartitionFilter {
    pub fn wants_account(&self, account: &str) -> bool {
        self.accounts.as_ref().is_none_or(|a| a.contains(account))
    }

    pub fn wants_region(&self, region: &str) -> bool {
        self.regions.as_ref().is_none_or(|r| r.contains(region))
    }

    /// The account, region and shard filters together.
    pub fn wants(&self, account: &str, region: &str) -> bool {
        self.wants_account(account)
            && self.wants_region(region)
            && self.shard.is_none_or(|s| s.holds(account, region))
    }
}

/// Shard `index` of `count` (0-based): a stable subset of the (account, region) pairs, since
/// baselines are per account and region. Every pair belongs to exactly one shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
    pub assignment: ShardAssignment,
}

/// How a pair's shard is found from its hash (FNV-1a of `ACCOUNT/REGION`: stable across
/// versions and platforms, unlike the std hasher).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ShardAssignment {
    /// The hash mixed (murmur3's finalizer), then its remainder: every bit of the hash counts.
    #[default]
    Mixed,
    /// The hash's own remainder, as versions before 2 of the assignment did. FNV-1a's low bits
    /// are poorly mixed (the lowest is the parity of the odd bytes), so a count of 4 or 8 left
    /// half the shards empty; kept only for the states those versions sharded, whose
    /// partitions must not move (`state::RunState::shard_assignment`).
    Remainder,
}

impl ShardAssignment {
    /// The version a state records for it (`None`: before versions were recorded).
    pub fn version(self) -> Option<u32> {
        match self {
            ShardAssignment::Mixed => Some(2),
            ShardAssignment::Remainder => None,
        }
    }
}

impl Shard {
    pub fn holds(&self, account: &str, region: &str) -> bool {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in account.bytes().chain([b'/']).chain(region.bytes()) {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        if self.assignment == ShardAssignment::Mixed {
            hash = crate::model::mix64(hash);
        }
        hash % u64::from(self.count.max(1)) == u64::from(self.index)
    }

    /// `I/N` as written on the command line and in the state.
    pub fn label(&self) -> String {
        format!("{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_documented_layout() {
        let cases = [
            (
                "AWSLogs/111122223333/CloudTrail/us-east-2/2015/08/01/111122223333_CloudTrail_us-east-2_20150801T0210Z_Mu0KsOhtH1ar15ZZ.json.gz",
                "",
                None,
            ),
            (
                "my/prefix/AWSLogs/o-a1b2c3d4e5/123456789012/CloudTrail/eu-west-1/2019/11/07/x.json.gz",
                "my/prefix/",
                Some("o-a1b2c3d4e5"),
            ),
            (
                "o-fxozgwu6rc/AWSLogs/o-fxozgwu6rc/123456789016/CloudTrail/ca-central-1/2020/08/30/123456789016_CloudTrail_ca-central-1_20200830T0115Z_3YQJxwt5qUaOzMtL.json.gz",
                "o-fxozgwu6rc/",
                Some("o-fxozgwu6rc"),
            ),
            (
                "AWSLogs/123456789012/CloudTrail/us-gov-west-1/2014/06/20/123456789012_CloudTrail_us-west-1_20140620T1255ZHdkvFTXOA3Vnhbc.json.gz",
                "",
                None,
            ),
        ];
        for (key, prefix, org) in cases {
            let parsed = parse_log_key(key).unwrap_or_else(|e| panic!("{key}: {e:?}"));
            assert_eq!(parsed.partition.prefix, prefix, "{key}");
            assert_eq!(parsed.partition.org_id.as_deref(), org, "{key}");
            assert!(
                key.starts_with(&parsed.partition.day_prefix(parsed.day)),
                "{key}"
            );
        }
    }

    #[test]
    fn rejects_siblings_digests_and_strangers() {
        let cases = [
            (
                "AWSLogs/111122223333/CloudTrail-Digest/us-east-2/2015/08/17/111122223333_CloudTrail-Digest_us-east-2_t_us-east-2_20150817T150131Z.json.gz",
                KeyProblem::SiblingService("CloudTrail-Digest".into()),
            ),
            (
                "AWSLogs/111122223333/CloudTrail-Insight/us-east-2/2015/08/17/a.json.gz",
                KeyProblem::SiblingService("CloudTrail-Insight".into()),
            ),
            (
                "AWSLogs/111122223333/CloudTrail/us-east-2/2015/08/17/111122223333_CloudTrail-Digest_us-east-2_t.json.gz",
                KeyProblem::NotALogFile("a CloudTrail digest file, not a log file".into()),
            ),
            (
                "AWSLogs/111122223333/CloudTrail/us-east-2/2015/08/17/notes.txt",
                KeyProblem::NotALogFile("not a .json.gz or .json file".into()),
            ),
            (
                "AWSLogs/1111/CloudTrail/us-east-2/2015/08/17/a.json.gz",
                KeyProblem::NotCloudTrailLayout,
            ),
            (
                "AWSLogs/111122223333/CloudTrail/us-east-2/2015/13/17/a.json.gz",
                KeyProblem::NotCloudTrailLayout,
            ),
            ("random/file.json.gz", KeyProblem::NotCloudTrailLayout),
        ];
        for (key, want) in cases {
            assert_eq!(parse_log_key(key), Err(want), "{key}");
        }
    }

    /// Keys parsed in turn read exactly as parsed alone, whether their folder is the last one
    /// parsed on the thread or not, whatever their file names.
    #[test]
    fn keys_parsed_in_turn_read_as_keys_parsed_alone() {
        let folders = [
            "AWSLogs/111122223333/CloudTrail/us-east-2/2015/08/01/",
            "my/AWSLogs.old/AWSLogs/o-a1b2c3d4e5/123456789012/CloudTrail/eu-west-1/2019/11/07/",
            "o-fxozgwu6rc/AWSLogs/o-fxozgwu6rc/123456789016/CloudTrail/ca-central-1/2020/08/30/",
            "AWSLogs/111122223333/CloudTrail-Digest/us-east-2/2015/08/17/",
            "AWSLogs/111122223333/CloudTrail/us-east-2/2015/13/17/",
            "AWSLogs/1111/CloudTrail/us-east-2/2015/08/17/",
            "random/",
            "",
        ];
        let names = [
            "111122223333_CloudTrail_us-east-2_20150801T0210Z_Mu0KsOhtH1ar15ZZ.json.gz",
            "x.json",
            "111122223333_CloudTrail-Digest_us-east-2_t.json.gz",
            "111122223333_CloudTrail-Insight_us-east-2_t.json.gz",
            "notes.txt",
            "",
            "y.json.gz",
        ];
        let keys: Vec<String> = folders
            .iter()
            .flat_map(|f| names.iter().map(move |n| format!("{f}{n}")))
            .collect();
        // Each folder's keys in turn, then every key after every other one.
        let order = keys.iter().chain(keys.iter().rev().step_by(3));
        for key in order {
            assert_eq!(
                parse_log_key_parts_in_turn(key),
                parse_log_key_parts(key),
                "{key}"
            );
        }
    }

    #[test]
    fn every_pair_is_in_exactly_one_shard() {
        for n in 1..6 {
            for account in ["123456789012", "210987654321", "111122223333"] {
                for region in ["us-east-1", "eu-west-1", "ap-south-2"] {
                    for assignment in [ShardAssignment::Mixed, ShardAssignment::Remainder] {
                        let holders = (0..n).filter(|i| {
                            Shard {
                                index: *i,
                                count: n,
                                assignment,
                            }
                            .holds(account, region)
                        });
                        assert_eq!(holders.count(), 1, "{account} {region} of {n}");
                    }
                }
            }
        }
    }

    /// Every shard gets its share of an organization's pairs, whatever the count: the bare
    /// remainder of FNV-1a left shards 0 and 3 of 4 empty on such accounts.
    #[test]
    fn the_pairs_spread_over_every_shard() {
        let regions = [
            "us-east-1",
            "us-east-2",
            "us-west-1",
            "us-west-2",
            "eu-west-1",
            "eu-west-2",
            "eu-west-3",
            "eu-central-1",
            "eu-north-1",
            "ap-south-1",
            "ap-northeast-1",
            "ap-northeast-2",
            "ap-southeast-1",
            "ap-southeast-2",
            "ca-central-1",
            "sa-east-1",
        ];
        let pairs: Vec<(String, &str)> = (0..60u64)
            .flat_map(|i| {
                let account = (100_000_000_000 + i * 7919).to_string();
                regions.iter().map(move |r| (account.clone(), *r))
            })
            .collect();
        for count in [2, 3, 4, 5, 8, 16] {
            let shares: Vec<usize> = (0..count)
                .map(|index| {
                    let shard = Shard {
                        index,
                        count,
                        assignment: ShardAssignment::Mixed,
                    };
                    pairs.iter().filter(|(a, r)| shard.holds(a, r)).count()
                })
                .collect();
            let fair = pairs.len() / count as usize;
            assert!(
                shares
                    .iter()
                    .all(|&n| n * 3 >= fair * 2 && n * 3 <= fair * 4),
                "{count} shards: {shares:?}"
            );
        }
    }

    #[test]
    fn segment_classifiers() {
        for (seg, account, org, region) in [
            ("123456789012", true, false, false),
            ("o-a1b2c3d4e5", false, true, true),
            ("us-east-1", false, false, true),
            ("ap-southeast-3", false, false, true),
            ("CloudTrail", false, false, false),
            ("2019", false, false, false),
            ("..", false, false, false),
            // Nothing that could climb out of an output root passes as a path component.
            ("o-..", false, false, false),
            ("o-abc/../x", false, false, false),
            ("us-east-1/../..", false, false, false),
            ("%2e%2e", false, false, false),
            ("/etc", false, false, false),
            ("12345678901/", false, false, false),
            ("us-east-1\0", false, false, false),
        ] {
            assert_eq!(is_account(seg), account, "{seg}");
            assert_eq!(is_org_id(seg), org, "{seg}");
            assert_eq!(is_region(seg), region, "{seg}");
        }
    }
}
