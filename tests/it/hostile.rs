//! The hostile-input corpus (tests/hostile/README.md lists every case and what it must get).
//!
//! One row per case. Each case is written into the day folder of a tree that also holds one good
//! object, and the real binary is run on it twice, plain and with `--strict`. Every row checks:
//! no panic; the documented exit code (0 read, 1 objects skipped, 3 a partition withheld; 2
//! under `--strict` when the case is a problem); a message on stderr naming the object; the count by reason in the JSON run
//! summary; the bad-objects report listing it; and the good object still read and counted.
//! Large inputs (a decompression bomb, a 100 MB string, a sparse file over the cap) are made at
//! test time; the small ones are also committed under tests/hostile/corpus/ (checked here).

use crate::support::*;
use serde_json::{Value, json};
use std::path::Path;

const DAY: &str = "2019-11-07";
const REGION: &str = "us-east-1";
const DAY_FOLDER: &str = "AWSLogs/123456789012/CloudTrail/us-east-1/2019/11/07";
const GOOD_WRITES: u64 = 3;

/// What a case must get. Details are checked only where trailsight words them itself (not
/// the JSON parser's own wording, which a faster decoder may change).
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Not read: exit 1, `objects_skipped[reason]`, the detail holds the text; `--strict` exits 2.
    Skipped(&'static str, &'static str),
    /// Could not be read from disk: like `Skipped` with `fetch failed`, and the partition is
    /// withheld (a later run retries it): exit 3.
    FetchFailed,
    /// Read, with `n` bad records for `reason` (and `writes` good write events): exit 0, the
    /// object named with its counts; `--strict` exits 2.
    BadRecords(&'static str, u64, u64),
    /// Listed but never opened, `count` files: exit 0; `--strict` exits 2 unless `strict_ok`.
    Ignored(&'static str, u64, bool),
    /// Read; `n` records outside the analysed days (not a problem, even for `--strict`).
    OutOfScope(u64),
    /// Read as ordinary input: `writes` write events, `duplicates` dropped, no problem.
    Read { writes: u64, duplicates: u64 },
}

use Expect::*;

/// A hostile case: a name, what it writes into the day folder (returning the file name the
/// messages must name), extra arguments, and the expected outcome.
struct Case {
    name: &'static str,
    build: fn(&Path) -> String,
    args: &'static [&'static str],
    expect: Expect,
}

fn file_name(unique: &str) -> String {
    format!("123456789012_CloudTrail_us-east-1_20191107T2355Z_{unique}.json.gz")
}

fn put(dir: &Path, name: &str, bytes: &[u8]) -> String {
    std::fs::write(dir.join(name), bytes).unwrap();
    name.to_owned()
}

/// A gzip `.json.gz` object holding `json` as text.
fn put_gz(dir: &Path, unique: &str, json: &[u8]) -> String {
    put(dir, &file_name(unique), &gzip(json))
}

/// A good write call of the case (at 11:40, so it is in the analysed day), with `changes`
/// applied: a `null` removes the field.
fn record(id: u64, changes: Value) -> Value {
    let mut r = call(ACCOUNT, REGION, &at(DAY, 700, 0), "CreateBucket", 100 + id);
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            r.as_object_mut().unwrap().remove(k);
        } else {
            r[k] = v.clone();
        }
    }
    r
}

/// An object of `records` in `{"Records":[...]}`.
fn put_records(dir: &Path, unique: &str, records: &[Value]) -> String {
    put_gz(
        dir,
        unique,
        json!({ "Records": records }).to_string().as_bytes(),
    )
}

/// `{"Records":[<one good record>, RAW]}` with RAW spliced in as text.
fn put_with_raw_record(dir: &Path, unique: &str, raw: &[u8]) -> String {
    let mut json = format!(r#"{{"Records":[{},"#, record(0, json!({}))).into_bytes();
    json.extend_from_slice(raw);
    json.extend_from_slice(b"]}");
    put_gz(dir, unique, &json)
}

fn gzip_of_records() -> Vec<u8> {
    gzip(
        json!({"Records": [record(0, json!({}))]})
            .to_string()
            .as_bytes(),
    )
}

fn symlink(target: impl AsRef<Path>, link: &Path) {
    std::os::unix::fs::symlink(target, link).unwrap();
}

fn cases() -> Vec<Case> {
    vec![
        // ---- objects that cannot be read at all: skipped, named, exit 1 ----
        Case {
            name: "not gzip under a .json.gz name",
            build: |d| put(d, &file_name("notgzip"), br#"{"Records":[]}"#),
            args: &[],
            expect: Skipped("not gzip", "starts with bytes 7b 22 52 65"),
        },
        Case {
            name: "empty file named .json.gz",
            build: |d| put(d, &file_name("empty"), b""),
            args: &[],
            expect: Skipped("not gzip", "the file is empty"),
        },
        Case {
            name: "empty file named .json",
            build: |d| {
                put(
                    d,
                    "123456789012_CloudTrail_us-east-1_20191107T2355Z_empty.json",
                    b"",
                )
            },
            args: &[],
            expect: Skipped("invalid JSON", "invalid JSON"),
        },
        Case {
            name: "truncated gzip",
            build: |d| {
                let whole = gzip_of_records();
                put(d, &file_name("truncated"), &whole[..whole.len() - 12])
            },
            args: &[],
            expect: Skipped("truncated gzip", "truncated gzip"),
        },
        Case {
            name: "gzip header only",
            build: |d| put(d, &file_name("headeronly"), &gzip_of_records()[..10]),
            args: &[],
            expect: Skipped("truncated gzip", "truncated gzip"),
        },
        Case {
            name: "gzip with trailing garbage",
            build: |d| {
                let mut bytes = gzip_of_records();
                bytes.extend_from_slice(b"GARBAGE AFTER THE MEMBER");
                put(d, &file_name("trailing"), &bytes)
            },
            args: &[],
            expect: Skipped("corrupt gzip", "corrupt gzip"),
        },
        Case {
            name: "gzip with a wrong CRC",
            build: |d| {
                let mut bytes = gzip_of_records();
                let crc = bytes.len() - 8;
                bytes[crc] ^= 0xff;
                put(d, &file_name("badcrc"), &bytes)
            },
            args: &[],
            expect: Skipped("corrupt gzip", "corrupt gzip"),
        },
        Case {
            name: "decompression bomb (64 MiB of zeros, cap 1 MiB)",
            build: |d| {
                use std::io::Write;
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
                let zeros = vec![0u8; 1 << 20];
                for _ in 0..64 {
                    e.write_all(&zeros).unwrap();
                }
                put(d, &file_name("bomb"), &e.finish().unwrap())
            },
            args: &["--max-object-bytes", "1048576"],
            expect: Skipped(
                "over the size limit",
                "more than 1048576 bytes, the per-object limit (--max-object-bytes)",
            ),
        },
        Case {
            name: "stored file larger than the cap",
            build: |d| {
                let json = json!({"Records": vec![record(0, json!({})); 20]}).to_string();
                put(
                    d,
                    "123456789012_CloudTrail_us-east-1_20191107T2355Z_big.json",
                    json.as_bytes(),
                )
            },
            args: &["--max-object-bytes", "4096"],
            expect: Skipped("over the size limit", "(--max-object-bytes)"),
        },
        Case {
            name: "sparse 300 MB file over the default cap (never loaded)",
            build: |d| {
                let name = file_name("sparse");
                sparse_file(&d.join(&name), 300 << 20);
                name
            },
            args: &[],
            expect: Skipped(
                "over the size limit",
                "more than the per-object limit of 209715200 bytes",
            ),
        },
        Case {
            name: "gzip of binary noise",
            build: |d| {
                let noise: Vec<u8> = (0..4096u32)
                    .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
                    .collect();
                put_gz(d, "noise", &noise)
            },
            args: &[],
            expect: Skipped("invalid JSON", "invalid JSON"),
        },
        Case {
            name: "invalid UTF-8 in eventName",
            build: |d| {
                put_with_raw_record(d, "utf8value", b"{\"eventTime\":\"2019-11-07T11:40:00Z\",\"eventName\":\"Run\xff\xfeInstances\"}")
            },
            args: &[],
            expect: Skipped("invalid JSON", "invalid JSON"),
        },
        Case {
            name: "invalid UTF-8 in a record key",
            build: |d| {
                put_with_raw_record(
                    d,
                    "utf8key",
                    b"{\"event\xc3\x28Time\":\"2019-11-07T11:40:00Z\"}",
                )
            },
            args: &[],
            expect: Skipped("invalid JSON", "invalid JSON"),
        },
        Case {
            name: "deep nesting: 100k [, unclosed",
            build: |d| put_gz(d, "deepopen", "[".repeat(100_000).as_bytes()),
            args: &[],
            expect: Skipped("invalid JSON", "invalid JSON"),
        },
        Case {
            name: "top level is a string",
            build: |d| put_gz(d, "string", br#""Records""#),
            args: &[],
            expect: Skipped(
                "not a CloudTrail log file",
                "the top level is not a JSON object",
            ),
        },
        Case {
            name: "top level is null",
            build: |d| put_gz(d, "null", b"null"),
            args: &[],
            expect: Skipped(
                "not a CloudTrail log file",
                "the top level is not a JSON object",
            ),
        },
        Case {
            name: "Records is an object",
            build: |d| put_gz(d, "recordsobject", br#"{"Records":{"0":{}}}"#),
            args: &[],
            expect: Skipped("not a CloudTrail log file", "Records is not an array"),
        },
        Case {
            name: "Records is a string",
            build: |d| put_gz(d, "recordsstring", br#"{"Records":"[]"}"#),
            args: &[],
            expect: Skipped("not a CloudTrail log file", "Records is not an array"),
        },
        Case {
            name: "no Records key",
            build: |d| put_gz(d, "norecords", br#"{"records":[]}"#),
            args: &[],
            expect: Skipped("not a CloudTrail log file", "has no Records"),
        },
        Case {
            name: "JSON cut short inside gzip",
            build: |d| {
                put_gz(
                    d,
                    "cut",
                    br#"{"Records":[{"eventTime":"2019-11-07T11:40:00Z","#,
                )
            },
            args: &[],
            expect: Skipped("invalid JSON", "invalid JSON"),
        },
        Case {
            name: "text after the JSON",
            build: |d| put_gz(d, "after", br#"{"Records":[]} {"Records":[]}"#),
            args: &[],
            expect: Skipped("invalid JSON", "invalid JSON"),
        },
        Case {
            name: "UTF-8 byte-order mark before the JSON",
            build: |d| put_gz(d, "bom", b"\xef\xbb\xbf{\"Records\":[]}"),
            args: &[],
            expect: Skipped("invalid JSON", "invalid JSON"),
        },
        Case {
            name: "NUL bytes",
            build: |d| put_gz(d, "nul", b"{\"Records\":[\0\0\0]}"),
            args: &[],
            expect: Skipped("invalid JSON", "invalid JSON"),
        },
        Case {
            name: "unreadable file (read fails with EIO)",
            // Tests run as root, so a 000 mode does not stop a read; /proc/self/mem does: it
            // is a regular file whose first page is never mapped, so read(2) fails.
            build: |d| {
                let name = file_name("unreadable");
                symlink("/proc/self/mem", &d.join(&name));
                name
            },
            args: &[],
            expect: FetchFailed,
        },
        // ---- objects read, with records that cannot be used ----
        Case {
            name: "Records holding null",
            build: |d| put_with_raw_record(d, "nullrecord", b"null"),
            args: &[],
            expect: BadRecords("record is not a JSON object", 1, 1),
        },
        Case {
            name: "Records holding a number, a string and an array",
            build: |d| put_with_raw_record(d, "scalars", b"7,\"x\",[1,{}]"),
            args: &[],
            expect: BadRecords("record is not a JSON object", 3, 1),
        },
        Case {
            name: "deep nesting: 100k [ as eventName",
            build: |d| {
                let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
                let raw = record(1, json!({}))
                    .to_string()
                    .replace(r#""CreateBucket""#, &deep);
                put_with_raw_record(d, "deepname", raw.as_bytes())
            },
            args: &[],
            expect: BadRecords("record has no eventName", 1, 1),
        },
        Case {
            name: "deep nesting: 100k [ at the top level, closed",
            build: |d| {
                put_gz(
                    d,
                    "deeptop",
                    format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).as_bytes(),
                )
            },
            args: &[],
            expect: BadRecords("record is not a JSON object", 1, 0),
        },
        Case {
            name: "record without eventTime",
            build: |d| put_records(d, "notime", &[record(1, json!({"eventTime": null}))]),
            args: &[],
            expect: BadRecords("record has no eventTime", 1, 0),
        },
        Case {
            name: "record without eventSource",
            build: |d| put_records(d, "nosource", &[record(1, json!({"eventSource": null}))]),
            args: &[],
            expect: BadRecords("record has no eventSource", 1, 0),
        },
        Case {
            name: "record with an empty eventSource",
            build: |d| put_records(d, "emptysource", &[record(1, json!({"eventSource": ""}))]),
            args: &[],
            expect: BadRecords("record has no eventSource", 1, 0),
        },
        Case {
            name: "record without eventName",
            build: |d| put_records(d, "noname", &[record(1, json!({"eventName": null}))]),
            args: &[],
            expect: BadRecords("record has no eventName", 1, 0),
        },
        Case {
            name: "eventTime as a number",
            build: |d| {
                put_records(
                    d,
                    "timenumber",
                    &[record(1, json!({"eventTime": 1573126800}))],
                )
            },
            args: &[],
            expect: BadRecords("eventTime is not an RFC 3339 time", 1, 0),
        },
        Case {
            name: "eventTime as a bool",
            build: |d| put_records(d, "timebool", &[record(1, json!({"eventTime": true}))]),
            args: &[],
            expect: BadRecords("eventTime is not a string", 1, 0),
        },
        Case {
            name: "eventTime as an object",
            build: |d| {
                put_records(
                    d,
                    "timeobject",
                    &[record(1, json!({"eventTime": {"t": 1}}))],
                )
            },
            args: &[],
            expect: BadRecords("eventTime is not a string", 1, 0),
        },
        Case {
            name: "eventTime unparsable",
            build: |d| {
                put_records(
                    d,
                    "timetext",
                    &[record(1, json!({"eventTime": "yesterday"}))],
                )
            },
            args: &[],
            expect: BadRecords("eventTime is not an RFC 3339 time", 1, 0),
        },
        Case {
            name: "eventTime on a day that does not exist",
            build: |d| {
                put_records(
                    d,
                    "timefeb30",
                    &[record(1, json!({"eventTime": "2019-02-30T11:40:00Z"}))],
                )
            },
            args: &[],
            expect: BadRecords("eventTime is not an RFC 3339 time", 1, 0),
        },
        Case {
            name: "eventTime without a time zone",
            build: |d| {
                put_records(
                    d,
                    "timenozone",
                    &[record(1, json!({"eventTime": "2019-11-07T11:40:00"}))],
                )
            },
            args: &[],
            expect: BadRecords("eventTime has no time zone", 1, 0),
        },
        Case {
            name: "recipientAccountId trying to climb out of the output",
            build: |d| {
                put_records(
                    d,
                    "account",
                    &[record(
                        1,
                        json!({"recipientAccountId": "../../../../tmp/x"}),
                    )],
                )
            },
            args: &[],
            expect: BadRecords("recipientAccountId is not a 12-digit account ID", 1, 0),
        },
        Case {
            name: "awsRegion trying to climb out of the output",
            build: |d| put_records(d, "region", &[record(1, json!({"awsRegion": "../../etc"}))]),
            args: &[],
            expect: BadRecords("awsRegion is not a region name", 1, 0),
        },
        // ---- records outside the analysed days: counted, not a problem ----
        Case {
            name: "eventTime in 1970",
            build: |d| {
                put_records(
                    d,
                    "time1970",
                    &[record(1, json!({"eventTime": "1970-01-01T00:00:00Z"}))],
                )
            },
            args: &[],
            expect: OutOfScope(1),
        },
        Case {
            name: "eventTime in 2999",
            build: |d| {
                put_records(
                    d,
                    "time2999",
                    &[record(1, json!({"eventTime": "2999-12-31T23:59:59Z"}))],
                )
            },
            args: &[],
            expect: OutOfScope(1),
        },
        // ---- odd but readable input: read as AWS means it ----
        Case {
            name: "empty Records",
            build: |d| put_gz(d, "emptyrecords", br#"{"Records":[]}"#),
            args: &[],
            expect: Read {
                writes: 0,
                duplicates: 0,
            },
        },
        Case {
            name: "a bare array of records",
            build: |d| {
                put_gz(
                    d,
                    "bare",
                    json!([record(1, json!({}))]).to_string().as_bytes(),
                )
            },
            args: &[],
            expect: Read {
                writes: 1,
                duplicates: 0,
            },
        },
        Case {
            name: "readOnly as the string \"false\"",
            build: |d| {
                put_records(
                    d,
                    "readonlystring",
                    &[record(1, json!({"readOnly": "false"}))],
                )
            },
            args: &[],
            expect: Read {
                writes: 1,
                duplicates: 0,
            },
        },
        Case {
            name: "numbers as strings and strings as numbers",
            build: |d| {
                put_records(
                    d,
                    "numbers",
                    &[record(
                        1,
                        json!({"recipientAccountId": 123456789012u64, "eventVersion": 1.08, "managementEvent": "true"}),
                    )],
                )
            },
            args: &[],
            expect: Read {
                writes: 1,
                duplicates: 0,
            },
        },
        Case {
            name: "userIdentity as a string",
            build: |d| {
                put_records(
                    d,
                    "identitystring",
                    &[record(1, json!({"userIdentity": "root"}))],
                )
            },
            args: &[],
            expect: Read {
                writes: 1,
                duplicates: 0,
            },
        },
        Case {
            name: "duplicate eventIDs, in the file and across files",
            build: |d| {
                let again = call(ACCOUNT, REGION, &at(DAY, 600, 0), "RunInstances", 0);
                put_records(
                    d,
                    "duplicates",
                    &[record(1, json!({})), record(1, json!({})), again],
                )
            },
            args: &[],
            expect: Read {
                writes: 3,
                duplicates: 2,
            },
        },
        Case {
            name: "unicode in values and keys",
            build: |d| {
                put_records(
                    d,
                    "unicode",
                    &[record(
                        1,
                        json!({"eventName": "Créer\u{1F600}Bucket", "ключ": "値", "userAgent": "\u{202e}evil"}),
                    )],
                )
            },
            args: &[],
            expect: Read {
                writes: 1,
                duplicates: 0,
            },
        },
        Case {
            name: "deep nesting: 100k [ and 100k { in fields nobody reads",
            build: |d| {
                let arrays = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
                let objects = format!("{}1{}", r#"{"a":"#.repeat(100_000), "}".repeat(100_000));
                let raw = record(
                    1,
                    json!({"requestParameters": "ARRAYS", "responseElements": "OBJECTS"}),
                )
                .to_string()
                .replace(r#""ARRAYS""#, &arrays)
                .replace(r#""OBJECTS""#, &objects);
                put_with_raw_record(d, "deepignored", raw.as_bytes())
            },
            args: &[],
            expect: Read {
                writes: 2,
                duplicates: 0,
            },
        },
        Case {
            name: "invalid UTF-8 in a field nobody reads",
            // Lenient like the rest of the record walk: bytes that are not looked at cannot
            // cost the record (serde_json skips unread strings without validating them).
            build: |d| {
                let raw = record(1, json!({"requestParameters": {"KEY": "VALUE"}}))
                    .to_string()
                    .into_bytes();
                let raw = String::from_utf8_lossy(&raw)
                    .replace("KEY", "k\u{1}")
                    .replace("VALUE", "v\u{2}")
                    .into_bytes()
                    .into_iter()
                    .map(|b| match b {
                        1 => 0xff,
                        2 => 0xfe,
                        b => b,
                    })
                    .collect::<Vec<u8>>();
                put_with_raw_record(d, "utf8unread", &raw)
            },
            args: &[],
            expect: Read {
                writes: 2,
                duplicates: 0,
            },
        },
        Case {
            name: "a 100 MB string",
            build: |d| {
                let big = "A".repeat(100 << 20);
                let json = format!(
                    r#"{{"Records":[{}],"padding":"{big}"}}"#,
                    record(1, json!({}))
                );
                put_gz(d, "hugestring", json.as_bytes())
            },
            args: &[],
            expect: Read {
                writes: 1,
                duplicates: 0,
            },
        },
        Case {
            name: "file name with spaces and unicode",
            build: |d| put_records(d, "a b \u{65e5}\u{672c}", &[record(1, json!({}))]),
            args: &[],
            expect: Read {
                writes: 1,
                duplicates: 0,
            },
        },
        Case {
            name: "file names made of dots and %2e%2e",
            build: |d| {
                put(
                    d,
                    "..json.gz",
                    &gzip(
                        json!({"Records": [record(1, json!({}))]})
                            .to_string()
                            .as_bytes(),
                    ),
                );
                put(
                    d,
                    "%2e%2e%2f%2e%2e.json.gz",
                    &gzip(
                        json!({"Records": [record(2, json!({}))]})
                            .to_string()
                            .as_bytes(),
                    ),
                )
            },
            args: &[],
            expect: Read {
                writes: 2,
                duplicates: 0,
            },
        },
        Case {
            name: "a log file linked from outside the tree (followed)",
            // tests/hostile/outside-the-tree.json.gz holds one write call on the analysed day.
            build: |d| {
                let name = file_name("outside");
                symlink(
                    repo_path("tests/hostile/outside-the-tree.json.gz"),
                    &d.join(&name),
                );
                name
            },
            args: &[],
            expect: Read {
                writes: 1,
                duplicates: 0,
            },
        },
        Case {
            name: "Insight records among the logs",
            build: |d| {
                put_records(
                    d,
                    "insightrecords",
                    &[record(1, json!({"eventType": "AwsCloudTrailInsight"}))],
                )
            },
            args: &[],
            expect: Read {
                writes: 0,
                duplicates: 0,
            },
        },
        // ---- files in a day folder that are not log files: named, never opened ----
        Case {
            name: "a digest file inside CloudTrail/",
            build: |d| {
                put(
                    d,
                    "123456789012_CloudTrail-Digest_us-east-1_trail_us-east-1_20191107T235959Z.json.gz",
                    b"{}",
                )
            },
            args: &[],
            expect: Ignored("a CloudTrail digest file, not a log file", 1, true),
        },
        Case {
            name: "an Insights file inside CloudTrail/",
            build: |d| {
                put(
                    d,
                    "123456789012_CloudTrail-Insight_us-east-1_20191107T2359Z_x.json.gz",
                    b"{}",
                )
            },
            args: &[],
            expect: Ignored("a CloudTrail Insights file, not a log file", 1, true),
        },
        Case {
            name: "a stray text file",
            build: |d| put(d, "notes.txt", b"hello"),
            args: &[],
            expect: Ignored("not a .json.gz or .json file", 1, false),
        },
        Case {
            name: "a directory named like a log file",
            build: |d| {
                let name = file_name("directory");
                std::fs::create_dir(d.join(&name)).unwrap();
                name
            },
            args: &[],
            expect: Ignored("a directory, not a log file", 1, false),
        },
        Case {
            name: "a FIFO named like a log file (must not hang)",
            build: |d| {
                let name = file_name("fifo");
                let made = std::process::Command::new("mkfifo")
                    .arg(d.join(&name))
                    .status()
                    .unwrap();
                assert!(made.success(), "mkfifo failed");
                name
            },
            args: &[],
            expect: Ignored("not a regular file (a FIFO, socket or device)", 1, false),
        },
        Case {
            name: "a link to a device named like a log file",
            build: |d| {
                let name = file_name("devzero");
                symlink("/dev/zero", &d.join(&name));
                name
            },
            args: &[],
            expect: Ignored("not a regular file (a FIFO, socket or device)", 1, false),
        },
        Case {
            name: "a symbolic link loop",
            build: |d| {
                symlink(file_name("loopb"), &d.join(file_name("loopa")));
                symlink(file_name("loopa"), &d.join(file_name("loopb")));
                file_name("loopa")
            },
            args: &[],
            expect: Ignored("a broken or looping symbolic link", 2, false),
        },
        Case {
            name: "a dangling symbolic link",
            build: |d| {
                let name = file_name("dangling");
                symlink("/nonexistent/trailsight/log.json.gz", &d.join(&name));
                name
            },
            args: &[],
            expect: Ignored("a broken or looping symbolic link", 1, false),
        },
        Case {
            name: "a file name that is not UTF-8",
            build: |d| {
                use std::os::unix::ffi::OsStrExt;
                let name = std::ffi::OsStr::from_bytes(b"123456789012_CloudTrail_bad\xff.json.gz");
                std::fs::write(d.join(name), b"x").unwrap();
                "123456789012_CloudTrail_bad\u{fffd}.json.gz".to_owned()
            },
            args: &[],
            expect: Ignored("a file name that is not UTF-8", 1, false),
        },
    ]
}

/// A tree holding the good object (3 write events) in the day folder; returns the folder.
fn tree_with_good_object() -> (Tree, std::path::PathBuf) {
    let tree = Tree::new();
    let good: Vec<Value> = (0..GOOD_WRITES)
        .map(|i| {
            call(
                ACCOUNT,
                REGION,
                &at(DAY, 600 + i as u32, 0),
                "RunInstances",
                i,
            )
        })
        .collect();
    tree.write_log(&log_key("", None, ACCOUNT, REGION, DAY, "good"), &good);
    let dir = tree.path().join(DAY_FOLDER);
    (tree, dir)
}

fn run_case(tree: &Tree, out: &Path, case: &Case, strict: bool) -> Run {
    let mut args = vec![
        "analyze",
        "--source",
        tree.path().to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--from",
        DAY,
        "--to",
        DAY,
    ];
    args.extend_from_slice(case.args);
    if strict {
        args.push("--strict");
    }
    trailsight_env(&args, &[("RUST_LOG", "info")])
}

/// The bad-objects report of the run, if one was written.
fn report(out: &Path) -> Option<Value> {
    let path = out.join(format!("_trailsight/bad-objects/{DAY}.json"));
    std::fs::read(path)
        .ok()
        .map(|b| serde_json::from_slice(&b).unwrap())
}

/// Whether the report's `list` holds an entry for `object` with `reason`.
fn reported(report: &Option<Value>, list: &str, object: &str, reason: &str) -> bool {
    let Some(report) = report else { return false };
    report[list].as_array().unwrap().iter().any(|e| {
        e["object"].as_str().unwrap().ends_with(object)
            && (e["reason"] == reason || e["bad_records"][reason].is_u64())
    })
}

/// Check one case; returns what is wrong with it, if anything.
fn check(case: &Case) -> Result<(), String> {
    let (tree, dir) = tree_with_good_object();
    let object = (case.build)(&dir);
    let out = tempfile::tempdir().unwrap();
    let run = run_case(&tree, out.path(), case, false);
    let s = &run.summary;
    let mut wrong = Vec::new();
    let mut expect = |ok: bool, what: String| {
        if !ok {
            wrong.push(what);
        }
    };
    expect(!run.stderr.contains("panicked"), "a panic".into());
    expect(s.is_object(), "no JSON summary".into());
    let (code, strict_code, writes) = match case.expect {
        Skipped(..) => (1, 2, 0),
        FetchFailed => (3, 2, 0),
        BadRecords(_, _, writes) => (0, 2, writes),
        Ignored(_, _, strict_ok) => (0, if strict_ok { 0 } else { 2 }, 0),
        OutOfScope(_) => (0, 0, 0),
        Read { writes, .. } => (0, 0, writes),
    };
    expect(
        run.code == code,
        format!("exit code {} (want {code})", run.code),
    );
    expect(
        s["write_events"] == GOOD_WRITES + writes,
        format!(
            "write_events {} (want {} + {writes}): the good object was not counted",
            s["write_events"], GOOD_WRITES
        ),
    );
    let report = report(out.path());
    let names_it = run.stderr.contains(&object);
    match case.expect {
        Skipped(reason, detail) => {
            expect(
                s["objects_skipped"][reason] == 1,
                format!(
                    "objects_skipped[{reason}] = {}",
                    s["objects_skipped"][reason]
                ),
            );
            let entry = s["skipped"]
                .as_array()
                .and_then(|a| a.first())
                .cloned()
                .unwrap_or_default();
            expect(
                entry["object"]
                    .as_str()
                    .is_some_and(|o| o.ends_with(&object)),
                format!("skipped[0] = {entry}"),
            );
            expect(
                entry["detail"].as_str().is_some_and(|d| d.contains(detail)),
                format!("detail {} lacks {detail:?}", entry["detail"]),
            );
            expect(
                names_it && run.stderr.contains(detail),
                format!("stderr does not name {object} and {detail:?}"),
            );
            expect(
                reported(&report, "skipped", &object, reason),
                "not in the bad-objects report".into(),
            );
            expect(
                s["objects_read"] == 1,
                format!("objects_read {}", s["objects_read"]),
            );
        }
        FetchFailed => {
            expect(
                s["objects_skipped"]["fetch failed"] == 1,
                format!("objects_skipped {}", s["objects_skipped"]),
            );
            expect(names_it, format!("stderr does not name {object}"));
            expect(
                s["partitions_withheld"] == json!([format!("{ACCOUNT}/{REGION}")]),
                format!("withheld {}", s["partitions_withheld"]),
            );
            expect(
                reported(&report, "skipped", &object, "fetch failed"),
                "not in the bad-objects report".into(),
            );
        }
        BadRecords(reason, n, _) => {
            expect(
                s["bad_records"][reason] == n,
                format!("bad_records {}", s["bad_records"]),
            );
            expect(
                s["objects_with_bad_records"] == 1,
                format!("objects_with_bad_records {}", s["objects_with_bad_records"]),
            );
            let entry = &s["bad_record_objects"][0];
            expect(
                entry["object"]
                    .as_str()
                    .is_some_and(|o| o.ends_with(&object))
                    && entry["bad_records"][reason] == n,
                format!("bad_record_objects {}", s["bad_record_objects"]),
            );
            expect(
                names_it && run.stderr.contains(reason),
                format!("stderr does not name {object} and {reason:?}"),
            );
            expect(
                reported(&report, "bad_records", &object, reason),
                "not in the bad-objects report".into(),
            );
        }
        Ignored(reason, count, _) => {
            expect(
                s["files_ignored"][reason] == count,
                format!("files_ignored {}", s["files_ignored"]),
            );
            expect(
                names_it && run.stderr.contains(reason),
                format!("stderr does not name {object} and {reason:?}"),
            );
            expect(
                reported(&report, "ignored", &object, reason),
                "not in the bad-objects report".into(),
            );
        }
        OutOfScope(n) => {
            expect(
                s["records_out_of_scope"] == n,
                format!("records_out_of_scope {}", s["records_out_of_scope"]),
            );
            expect(
                report.is_none(),
                "a bad-objects report for a clean run".into(),
            );
        }
        Read { duplicates, .. } => {
            expect(
                s["duplicates_dropped"] == duplicates,
                format!("duplicates_dropped {}", s["duplicates_dropped"]),
            );
            expect(
                s["objects_skipped"] == json!({}) && s["bad_records"] == json!({}),
                format!("skipped {} bad {}", s["objects_skipped"], s["bad_records"]),
            );
            expect(
                report.is_none(),
                "a bad-objects report for a clean run".into(),
            );
        }
    }
    let strict_out = tempfile::tempdir().unwrap();
    let strict = run_case(&tree, strict_out.path(), case, true);
    expect(
        !strict.stderr.contains("panicked"),
        "a panic under --strict".into(),
    );
    expect(
        strict.code == strict_code,
        format!(
            "--strict exit code {} (want {strict_code}): {}",
            strict.code,
            strict.stderr.lines().last().unwrap_or_default()
        ),
    );
    if strict_code == 2 {
        expect(
            strict.stderr.contains("--strict"),
            "--strict failure not explained".into(),
        );
        expect(
            files(strict_out.path()).is_empty(),
            "--strict failed but wrote output".into(),
        );
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{}:\n  {}\n--- stderr ---\n{}",
            case.name,
            wrong.join("\n  "),
            tail(&run.stderr)
        ))
    }
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

#[test]
fn every_hostile_case_gets_its_documented_behaviour() {
    let cases = cases();
    assert!(cases.len() >= 40, "{} cases", cases.len());
    let failures: Vec<String> = cases.iter().filter_map(|c| check(c).err()).collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

/// Every case without arguments of its own in one day folder, next to another region's history
/// and burst: that region's Insight is still written, nothing lands outside `--out`, and the
/// report names every problem.
#[test]
fn all_cases_in_one_tree_leave_the_insight_and_the_output_root_intact() {
    let (tree, dir) = tree_with_good_object();
    let cases: Vec<Case> = cases().into_iter().filter(|c| c.args.is_empty()).collect();
    let mut problems = 0;
    for case in &cases {
        (case.build)(&dir);
        problems += u64::from(!matches!(case.expect, OutOfScope(_) | Read { .. }));
    }
    // Folder loops: above AWSLogs/ (each folder is visited once) and inside the layout (its
    // depth is fixed); neither may hang the walk.
    symlink(tree.path(), &tree.path().join("loop"));
    symlink(
        "..",
        &tree
            .path()
            .join("AWSLogs/123456789012/CloudTrail/us-east-1/2019/11/loop"),
    );
    // A quiet week and a burst in eu-west-1, filed in folders with odd prefixes.
    let prefix = "a b/%2e%2e/\u{65e5}\u{672c}/";
    for back in 1..=7 {
        let day = (parse(DAY) - chrono::Duration::days(back)).to_string();
        let record = call(
            ACCOUNT,
            "eu-west-1",
            &at(&day, 600, 0),
            "RunInstances",
            5000 + back as u64,
        );
        tree.write_log(
            &log_key(prefix, None, ACCOUNT, "eu-west-1", &day, "h"),
            &[record],
        );
    }
    let burst: Vec<Value> = (0..12)
        .map(|i| {
            call(
                ACCOUNT,
                "eu-west-1",
                &at(DAY, 300, i),
                "RunInstances",
                6000 + u64::from(i),
            )
        })
        .collect();
    tree.write_log(
        &log_key(prefix, None, ACCOUNT, "eu-west-1", DAY, "burst"),
        &burst,
    );

    let parent = tempfile::tempdir().unwrap();
    let out = parent.path().join("out");
    let run = analyze(tree.path(), &out, &["--from", DAY, "--to", DAY]);
    // 3: the unreadable file withholds its partition (the others are written).
    assert_eq!(run.code, 3, "{}", tail(&run.stderr));
    assert!(!run.stderr.contains("panicked"));
    let insights = insights(&out);
    assert!(
        insights
            .iter()
            .any(|(key, r)| key.contains("/eu-west-1/") && r["insightDetails"]["state"] == "Start"),
        "no Insight for eu-west-1: {}",
        tail(&run.stderr)
    );
    assert!(
        insights.iter().all(|(key, _)| !key.contains("/us-east-1/")),
        "us-east-1 is withheld"
    );
    for key in files(&out).keys() {
        assert!(
            [
                "AWSLogs/",
                "insights/",
                "explanations/",
                "activities/",
                "_trailsight/",
            ]
            .iter()
            .any(|p| key.starts_with(p))
                && !key.split('/').any(|c| c == ".." || c == "."),
            "unexpected output file {key}"
        );
    }
    let beside: Vec<_> = std::fs::read_dir(parent.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(beside, ["out"], "something was written beside --out");
    let report = report(&out).expect("a bad-objects report");
    let listed = ["skipped", "bad_records", "ignored"]
        .iter()
        .map(|l| report[l].as_array().unwrap().len() as u64)
        .sum::<u64>();
    // The symbolic-link loop is two files; every other problem case is one entry.
    assert_eq!(listed, problems + 1, "{report:#}");
}

fn parse(day: &str) -> chrono::NaiveDate {
    chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").unwrap()
}

/// The report's wire format, as documented in `src/telemetry/bad_objects.rs`: nothing else.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct ReportFile {
    version: u32,
    source: String,
    day: String,
    skipped: Vec<ReportSkipped>,
    bad_records: Vec<ReportBadRecords>,
    ignored: Vec<ReportIgnored>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct ReportSkipped {
    object: String,
    reason: String,
    detail: String,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct ReportBadRecords {
    object: String,
    records: u64,
    bad_records: std::collections::BTreeMap<String, u64>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct ReportIgnored {
    object: String,
    reason: String,
}

/// Reading from and writing to a real S3 server: the report goes to the output bucket through
/// the same output as the Insights, names `s3://` objects, and neither it, the summary nor the
/// log holds the credentials or a request signature.
#[test]
fn the_report_goes_to_s3_output_and_holds_no_credentials() {
    use crate::s3_server::S3Server;
    let (tree, dir) = tree_with_good_object();
    let skipped = put(&dir, &file_name("notgzip"), br#"{"Records":[]}"#);
    let truncated = {
        let whole = gzip_of_records();
        put(&dir, &file_name("truncated"), &whole[..whole.len() - 12])
    };
    let bad = put_records(&dir, "notime", &[record(1, json!({"eventTime": null}))]);
    let server = S3Server::start(&["cloudtrail", "insights"]);
    server.upload_tree(tree.path(), "cloudtrail", "ct/");
    let args = [
        "analyze",
        "--source",
        "s3://cloudtrail/ct",
        "--out",
        "s3://insights/out",
        "--force-path-style",
        "--from",
        DAY,
        "--to",
        DAY,
    ];
    let run = trailsight_env(&args, &server.env());
    assert_eq!(run.code, 1, "{}", tail(&run.stderr));
    let key = format!("_trailsight/bad-objects/{DAY}.json");
    let written = server.objects("insights", "out/");
    let bytes = written
        .get(&key)
        .unwrap_or_else(|| panic!("no {key} in {:?}", written.keys()));
    let report: ReportFile = serde_json::from_slice(bytes).unwrap();
    let objects: Vec<&str> = report.skipped.iter().map(|s| s.object.as_str()).collect();
    let day = format!("s3://cloudtrail/ct/{DAY_FOLDER}");
    assert_eq!(
        objects,
        [format!("{day}/{skipped}"), format!("{day}/{truncated}")]
    );
    assert_eq!(report.skipped[1].reason, "truncated gzip");
    assert_eq!(report.bad_records[0].object, format!("{day}/{bad}"));
    assert_eq!(
        run.summary["bad_objects_reports"],
        serde_json::json!([format!("s3://insights/out/{key}")])
    );
    let report_text = String::from_utf8_lossy(bytes);
    let summary_text = run.summary.to_string();
    for (name, value) in server.env() {
        if name.starts_with("AWS_") && name.contains("KEY") && !value.is_empty() {
            for (what, text) in [
                ("report", &*report_text),
                ("summary", &summary_text),
                ("log", &run.stderr),
            ] {
                assert!(!text.contains(&value), "{name} in the {what}");
            }
        }
    }
    for marker in ["X-Amz-Signature", "X-Amz-Credential", "Authorization"] {
        assert!(
            !report_text.contains(marker) && !run.stderr.contains(marker),
            "{marker}"
        );
    }
}

/// The largest case committed under tests/hostile/corpus/ (bigger ones are made at test time).
const MAX_COMMITTED_BYTES: u64 = 128 << 10;

/// `trailsight report --source` reads the logs again through the same capped read as a run:
/// a sparse 300 MiB file is refused from its size under the report's own --max-object-bytes,
/// named, and the page is the one drawn without it.
#[test]
fn the_report_skips_a_huge_log_file_from_its_size_alone() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    assert_eq!(analyze(&repo_path("sample-data"), &out, &[]).code, 0);
    let logs = Tree::new();
    for (key, bytes) in files(&repo_path("sample-data")) {
        logs.write_raw(&key, &bytes);
    }
    let html = dir.path().join("r.html");
    let report = || {
        run_binary(&[
            "report",
            "--insights",
            out.to_str().unwrap(),
            "--html",
            html.to_str().unwrap(),
            "--source",
            logs.path().to_str().unwrap(),
            "--max-object-bytes",
            "104857600",
        ])
    };
    let (code, _, plain) = report();
    assert_eq!(code, 0, "{plain}");
    let page = std::fs::read(&html).unwrap();
    let name = "123456789012_CloudTrail_us-east-1_20191108T1330Z_huge.json.gz";
    let folder = "AWSLogs/o-a1b2c3d4e5/123456789012/CloudTrail/us-east-1/2019/11/08";
    sparse_file(&logs.path().join(folder).join(name), 300 << 20);
    let (code, _, stderr) = report();
    assert_eq!(code, 1, "a skipped log file gives exit 1: {stderr}");
    assert!(
        stderr.contains(name)
            && stderr.contains("over the size limit")
            && stderr.contains(
                "the file is 314572800 bytes, more than the per-object limit of 104857600 bytes"
            ),
        "{stderr}"
    );
    let row = |text: &str, name: &str| {
        let line = text.lines().find(|l| l.trim_start().starts_with(name));
        line.map(str::to_owned)
    };
    assert!(row(&plain, "log objects read").is_some(), "{plain}");
    assert_eq!(
        row(&stderr, "log objects read"),
        row(&plain, "log objects read")
    );
    assert_eq!(
        row(&stderr, "skipped").unwrap().split_whitespace().last(),
        Some("1")
    );
    assert!(
        std::fs::read(&html).unwrap() == page,
        "the page is the one without the file"
    );
}

/// A case's folder name in the corpus.
fn slug(name: &str) -> String {
    let mut slug = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    slug.trim_matches('-').to_owned()
}

/// The files a case writes, if they are small regular files (the rest cannot be committed).
fn committable(dir: &Path) -> Option<std::collections::BTreeMap<String, Vec<u8>>> {
    let mut size = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = std::fs::symlink_metadata(entry.path()).unwrap();
        if !meta.is_file() || entry.file_name().to_str().is_none() {
            return None;
        }
        size += meta.len();
    }
    (size <= MAX_COMMITTED_BYTES).then(|| files(dir))
}

/// The small cases are committed as files under tests/hostile/corpus/<case>/ (for people to
/// try, and as seeds for tests/it/fuzz.rs); this keeps them equal to what the table builds.
/// `TRAILSIGHT_WRITE_CORPUS=1` rewrites them.
#[test]
fn the_committed_corpus_is_what_the_table_builds() {
    let corpus = repo_path("tests/hostile/corpus");
    let rewrite = std::env::var_os("TRAILSIGHT_WRITE_CORPUS").is_some();
    let mut expected = std::collections::BTreeSet::new();
    for case in cases() {
        let scratch = tempfile::tempdir().unwrap();
        (case.build)(scratch.path());
        let Some(built) = committable(scratch.path()) else {
            continue;
        };
        let folder = corpus.join(slug(case.name));
        expected.insert(slug(case.name));
        if rewrite {
            let _ = std::fs::remove_dir_all(&folder);
            std::fs::create_dir_all(&folder).unwrap();
            for (name, bytes) in &built {
                std::fs::write(folder.join(name), bytes).unwrap();
            }
        }
        assert_eq!(
            files(&folder),
            built,
            "{}: run with TRAILSIGHT_WRITE_CORPUS=1",
            case.name
        );
    }
    let committed: std::collections::BTreeSet<String> = std::fs::read_dir(&corpus)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(committed, expected, "stale or missing corpus folders");
}
