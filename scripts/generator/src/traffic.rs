//! The ordinary traffic model: how many calls each API gets in each minute.
//!
//! * **Diurnal and weekly cycles** (`Office`): rate = peak x (0.04 + 0.96 x bell(local hour)),
//!   where bell is a Gaussian centred on 13:30 local time with a 3 h width, so business hours
//!   carry most calls and nights keep a trickle; weekends are multiplied by 0.2.
//! * **Machine traffic** (`Machine`): rate = mean x (0.8 + 0.35 x bell), weekends x 0.85.
//! * **Sparse APIs** (`Sparse`): a flat `per_week / 10080` per minute, any hour.
//! * Each of these is a **Poisson** draw per API per minute around the rate, with the call's
//!   second uniform in the minute.
//! * **Scheduled automation** (`Daily`, `Weekdays`): a fixed number of calls at fixed local
//!   minutes (nightly snapshots at 02:00, deploy pipelines at 10:28-10:33 on weekdays, scaling at
//!   07:55 and 19:05), seconds clustered at the start of the minute like cron jobs.
//!
//! `Office` and `Machine` rates are multiplied by the stream's volume (run volume x account size
//! x region weight); sparse and scheduled counts are absolute.

use rand::Rng;
use rand_distr::{Distribution, Poisson};

use crate::catalogue::{APIS, Pattern};
use crate::clock::{self, MINUTES_PER_WEEK, Minute};
use crate::rng::Rand;

const OFFICE_FLOOR: f64 = 0.04;
const OFFICE_PEAK_HOUR: f64 = 13.5;
const OFFICE_WIDTH_HOURS: f64 = 3.0;
const OFFICE_WEEKEND: f64 = 0.2;
const MACHINE_BASE: f64 = 0.8;
const MACHINE_BUMP: f64 = 0.35;
const MACHINE_WEEKEND: f64 = 0.85;
/// Cron-started calls land in the first seconds of their minute.
const SCHEDULED_MAX_SECOND: u32 = 15;

/// One call to `APIS[api]` at `second` of the current minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call {
    pub api: usize,
    pub second: u32,
}

/// The traffic shape of one stream.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Multiplies `Office` and `Machine` rates.
    pub volume: f64,
    /// The account's offset from UTC, in minutes (local = UTC + offset).
    pub utc_offset: i64,
}

fn bell(hour: f64) -> f64 {
    let z = (hour - OFFICE_PEAK_HOUR) / OFFICE_WIDTH_HOURS;
    (-z * z).exp()
}

fn is_weekend(local: Minute) -> bool {
    clock::weekday(local) >= 5
}

/// Expected calls per minute of a Poisson pattern at UTC `minute` (0 for scheduled patterns).
pub fn rate(pattern: &Pattern, shape: Shape, minute: Minute) -> f64 {
    let local = minute + shape.utc_offset;
    let weekend = is_weekend(local);
    match *pattern {
        Pattern::Office { peak_per_hour } => {
            let day = if weekend { OFFICE_WEEKEND } else { 1.0 };
            shape.volume * peak_per_hour / 60.0
                * (OFFICE_FLOOR + (1.0 - OFFICE_FLOOR) * bell(clock::hour_of_day(local)))
                * day
        }
        Pattern::Machine { per_hour } => {
            let day = if weekend { MACHINE_WEEKEND } else { 1.0 };
            shape.volume * per_hour / 60.0
                * (MACHINE_BASE + MACHINE_BUMP * bell(clock::hour_of_day(local)))
                * day
        }
        Pattern::Sparse { per_week } => per_week / MINUTES_PER_WEEK as f64,
        Pattern::Daily { .. } | Pattern::Weekdays { .. } | Pattern::Never => 0.0,
    }
}

/// Calls a scheduled pattern makes in UTC `minute` (0 for Poisson patterns).
pub fn scheduled(pattern: &Pattern, shape: Shape, minute: Minute) -> u32 {
    let local = minute + shape.utc_offset;
    let (times, calls, weekdays_only) = match *pattern {
        Pattern::Daily { times, calls } => (times, calls, false),
        Pattern::Weekdays { times, calls } => (times, calls, true),
        _ => return 0,
    };
    if weekdays_only && is_weekend(local) {
        return 0;
    }
    let minute_of_day = local.rem_euclid(clock::MINUTES_PER_DAY);
    let hits = times
        .iter()
        .filter(|(h, m)| i64::from(*h) * 60 + i64::from(*m) == minute_of_day)
        .count();
    u32::from(calls) * hits as u32
}

/// A Poisson draw with mean `lambda` (0 when `lambda` is 0).
pub fn poisson(rng: &mut Rand, lambda: f64) -> u32 {
    if lambda <= 0.0 {
        return 0;
    }
    Poisson::new(lambda).map_or(0, |p| p.sample(rng) as u32)
}

/// The ordinary calls of one stream in `minute`, for the APIs in `apis` (catalogue indices).
/// `suppressed(api)` removes an API's ordinary calls (used where a scenario scripts them).
pub fn calls_in_minute(
    rng: &mut Rand,
    apis: &[usize],
    shape: Shape,
    minute: Minute,
    suppressed: impl Fn(usize) -> bool,
) -> Vec<Call> {
    let mut calls = Vec::new();
    for &api in apis {
        let pattern = &APIS[api].pattern;
        let fixed = scheduled(pattern, shape, minute);
        let drawn = poisson(rng, rate(pattern, shape, minute));
        if suppressed(api) {
            continue;
        }
        for _ in 0..fixed {
            calls.push(Call {
                api,
                second: rng.random_range(0..SCHEDULED_MAX_SECOND),
            });
        }
        for _ in 0..drawn {
            calls.push(Call {
                api,
                second: rng.random_range(0..60),
            });
        }
    }
    calls
}

/// The calls of `apis` long-tail APIs in one minute, each called `per_day` times a day on
/// average at any hour: one Poisson draw for all of them (their sum), each call then given to
/// one of them at random, which is the same distribution as one draw per API. Returns
/// (long-tail API, second) pairs.
pub fn long_tail_in_minute(rng: &mut Rand, apis: usize, per_day: f64) -> Vec<(usize, u32)> {
    if apis == 0 {
        return Vec::new();
    }
    let calls = poisson(rng, apis as f64 * per_day / clock::MINUTES_PER_DAY as f64);
    (0..calls)
        .map(|_| (rng.random_range(0..apis), rng.random_range(0..60)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::minute_of_date;
    use crate::rng::derive;
    use chrono::NaiveDate;

    fn monday() -> Minute {
        minute_of_date(NaiveDate::from_ymd_opt(2019, 11, 4).unwrap())
    }

    const UTC: Shape = Shape {
        volume: 1.0,
        utc_offset: 0,
    };

    #[test]
    fn office_peaks_in_business_hours_and_drops_on_weekends() {
        let office = Pattern::Office {
            peak_per_hour: 60.0,
        };
        let noon = rate(&office, UTC, monday() + 13 * 60 + 30);
        let night = rate(&office, UTC, monday() + 3 * 60);
        let saturday_noon = rate(&office, UTC, monday() - 2 * 1440 + 13 * 60 + 30);
        assert!((noon - 1.0).abs() < 1e-9, "{noon}");
        assert!(night < 0.05, "{night}");
        assert!((saturday_noon - 0.2).abs() < 1e-9, "{saturday_noon}");
    }

    #[test]
    fn timezone_shifts_the_peak() {
        let office = Pattern::Office {
            peak_per_hour: 60.0,
        };
        let new_york = Shape {
            volume: 1.0,
            utc_offset: -300,
        };
        // 13:30 in New York is 18:30 UTC.
        assert!((rate(&office, new_york, monday() + 18 * 60 + 30) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn schedules_fire_on_their_minutes_only() {
        let cases = [
            (
                Pattern::Daily {
                    times: &[(2, 0)],
                    calls: 4,
                },
                monday() + 120,
                4,
            ),
            (
                Pattern::Daily {
                    times: &[(2, 0)],
                    calls: 4,
                },
                monday() + 121,
                0,
            ),
            (
                Pattern::Weekdays {
                    times: &[(10, 30)],
                    calls: 2,
                },
                monday() + 630,
                2,
            ),
            (
                Pattern::Weekdays {
                    times: &[(10, 30)],
                    calls: 2,
                },
                monday() - 1440 + 630,
                0,
            ),
        ];
        for (pattern, minute, want) in cases {
            assert_eq!(
                scheduled(&pattern, UTC, minute),
                want,
                "{pattern:?} at {minute}"
            );
        }
    }

    #[test]
    fn long_tail_calls_spread_over_its_apis_at_their_rate() {
        let mut rng = derive(1, "long tail");
        let mut per_api = vec![0u32; 50];
        let days = 20;
        for _ in 0..days * 1440 {
            for (api, second) in long_tail_in_minute(&mut rng, 50, 3.0) {
                assert!(second < 60);
                per_api[api] += 1;
            }
        }
        let total: u32 = per_api.iter().sum();
        let mean = f64::from(total) / 50.0 / f64::from(days);
        assert!((mean - 3.0).abs() < 0.2, "{mean}");
        assert!(per_api.iter().all(|&n| n > 0), "{per_api:?}");
        assert!(long_tail_in_minute(&mut rng, 0, 3.0).is_empty());
    }

    #[test]
    fn poisson_mean_is_close() {
        let mut rng = derive(1, "poisson");
        let n = 20_000;
        let total: u32 = (0..n).map(|_| poisson(&mut rng, 0.7)).sum();
        let mean = f64::from(total) / f64::from(n);
        assert!((mean - 0.7).abs() < 0.03, "{mean}");
    }
}
