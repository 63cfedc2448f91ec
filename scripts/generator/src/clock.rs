//! Time as the generator sees it: whole minutes since the Unix epoch, in UTC.
//!
//! All scheduling is done on [`Minute`] integers; chrono is used only to turn a minute into the
//! strings CloudTrail writes (`eventTime`, the `YYYY/MM/DD` folder, the `YYYYMMDDTHHmmZ` file
//! stamp). The wall clock is never read here.

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};

/// Minutes since 1970-01-01T00:00Z.
pub type Minute = i64;

pub const MINUTES_PER_HOUR: i64 = 60;
pub const MINUTES_PER_DAY: i64 = 24 * MINUTES_PER_HOUR;
pub const MINUTES_PER_WEEK: i64 = 7 * MINUTES_PER_DAY;

/// The first minute of `date` (UTC).
pub fn minute_of_date(date: NaiveDate) -> Minute {
    let days = date.signed_duration_since(NaiveDate::default()).num_days();
    // NaiveDate::default() is 1970-01-01.
    days * MINUTES_PER_DAY
}

fn datetime(minute: Minute) -> DateTime<Utc> {
    DateTime::from_timestamp(minute * 60, 0).expect("minute within chrono's range")
}

/// `YYYY-MM-DDTHH:MM:` — the eventTime prefix shared by every record in `minute`.
pub fn event_time_prefix(minute: Minute) -> String {
    let t = datetime(minute);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute()
    )
}

/// `YYYY-MM-DDTHH:MM:SSZ` for a minute plus `second` (0..60).
pub fn event_time(minute: Minute, second: u32) -> String {
    format!("{}{second:02}Z", event_time_prefix(minute))
}

/// `YYYY/MM/DD`, the S3 folder of an object delivered in `minute`.
pub fn folder_date(minute: Minute) -> String {
    let t = datetime(minute);
    format!("{:04}/{:02}/{:02}", t.year(), t.month(), t.day())
}

/// `YYYYMMDDTHHmmZ`, the delivery stamp in a log file name.
pub fn file_stamp(minute: Minute) -> String {
    let t = datetime(minute);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}Z",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute()
    )
}

/// `YYYY-MM-DDTHH:MM:00Z`, how labels and summaries print a minute.
pub fn minute_label(minute: Minute) -> String {
    event_time(minute, 0)
}

/// `Nov 4, 2019 3:22:10 PM`, the Java-style date IAM, STS and SSM write in responses.
pub fn java_date(minute: Minute, second: u32) -> String {
    let t = datetime(minute);
    let (pm, hour) = t.hour12();
    format!(
        "{} {}, {} {hour}:{:02}:{second:02} {}",
        t.format("%b"),
        t.day(),
        t.year(),
        t.minute(),
        if pm { "PM" } else { "AM" }
    )
}

/// Day of the week of a (local) minute: 0 = Monday .. 6 = Sunday.
pub fn weekday(minute: Minute) -> i64 {
    // 1970-01-01 was a Thursday (3 when Monday is 0).
    (minute.div_euclid(MINUTES_PER_DAY) + 3).rem_euclid(7)
}

/// Fractional hour of the day (0.0 ..< 24.0) of a (local) minute.
pub fn hour_of_day(minute: Minute) -> f64 {
    minute.rem_euclid(MINUTES_PER_DAY) as f64 / MINUTES_PER_HOUR as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_match_cloudtrail() {
        let start = minute_of_date(NaiveDate::from_ymd_opt(2019, 10, 31).unwrap());
        let cases = [
            (
                start,
                "2019-10-31T00:00:07Z",
                "2019/10/31",
                "20191031T0000Z",
            ),
            (
                start + 13 * 60 + 25,
                "2019-10-31T13:25:07Z",
                "2019/10/31",
                "20191031T1325Z",
            ),
            (
                start + MINUTES_PER_DAY + 1,
                "2019-11-01T00:01:07Z",
                "2019/11/01",
                "20191101T0001Z",
            ),
        ];
        for (minute, event, folder, stamp) in cases {
            assert_eq!(event_time(minute, 7), event, "minute {minute}");
            assert_eq!(folder_date(minute), folder, "minute {minute}");
            assert_eq!(file_stamp(minute), stamp, "minute {minute}");
        }
    }

    #[test]
    fn weekday_of_known_dates() {
        // 2019-11-02 was a Saturday, 2019-11-04 a Monday.
        let sat = minute_of_date(NaiveDate::from_ymd_opt(2019, 11, 2).unwrap());
        let mon = minute_of_date(NaiveDate::from_ymd_opt(2019, 11, 4).unwrap());
        assert_eq!(weekday(sat), 5);
        assert_eq!(weekday(mon + 600), 0);
        assert!((hour_of_day(mon + 90) - 1.5).abs() < 1e-9);
    }
}
