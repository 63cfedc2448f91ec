//! Table-style tests of the episode rule on synthetic series.

use super::*;
use crate::aggregate::Cell;
use crate::model::{InsightKind, parse_day};

const DAY: i64 = MINUTES_PER_DAY;

fn day0() -> Minute {
    Minute::start_of_day(parse_day("2019-10-31").unwrap())
}

/// A series from (minute offset from day0, count) pairs; history starts at day0.
fn series(points: &[(i64, u32)]) -> Series<'static> {
    series_from(day0(), ("ec2.amazonaws.com", "RunInstances"), points)
}

/// A call-rate series of `api` (event source, name) from (minute offset from `day0`, count)
/// pairs, the counts of one minute added up; its history starts at `day0`. The detector's
/// tests (here, `baseline`'s and `clump`'s) build their series with it.
pub(super) fn series_from(
    day0: Minute,
    api: (&str, &str),
    points: &[(i64, u32)],
) -> Series<'static> {
    let mut points = points.to_vec();
    points.sort();
    let mut merged: Vec<(i64, u32)> = Vec::new();
    for (m, c) in points {
        match merged.last_mut() {
            Some((last, n)) if *last == m => *n += c,
            _ => merged.push((m, c)),
        }
    }
    Series {
        key: SeriesKey {
            account: "123456789012".into(),
            region: "us-east-1".into(),
            event_source: api.0.into(),
            event_name: api.1.into(),
            kind: InsightKind::CallRate,
            category: Default::default(),
        },
        history_from: day0,
        minutes: merged.iter().map(|(m, _)| day0.plus(*m)).collect(),
        cells: merged.iter().map(|(_, c)| Cell::with_count(*c)).collect(),
        spills: Default::default(),
    }
}

/// Episodes as (start offset, end offset) over days [from_day, until_day).
fn run(points: &[(i64, u32)], from_day: i64, until_day: i64) -> Vec<(i64, Option<i64>)> {
    if std::env::var("DEBUG_DETECT").is_ok() {
        eprintln!(
            "{:#?}",
            detect_series(
                &series(points),
                day0().plus(from_day * DAY),
                day0().plus(until_day * DAY),
                &DetectorConfig::default()
            )
        );
    }
    detect_series(
        &series(points),
        day0().plus(from_day * DAY),
        day0().plus(until_day * DAY),
        &DetectorConfig::default(),
    )
    .into_iter()
    .map(|e| (e.start.0 - day0().0, e.end.map(|m| m.0 - day0().0)))
    .collect()
}

/// A deterministic stream of uniform numbers in [0, 1) (SplitMix64).
fn uniforms(seed: u64) -> impl Iterator<Item = f64> {
    let mut state = seed;
    std::iter::from_fn(move || {
        state = state.wrapping_add(0x9E3779B97F4A7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
        Some((z ^ (z >> 31)) as f64 / u64::MAX as f64)
    })
}

/// Poisson counts with mean `rate` per minute for `days` days (Knuth's method).
fn poisson_minutes(rate: f64, days: i64, seed: u64) -> Vec<(i64, u32)> {
    let mut u = uniforms(seed);
    let limit = (-rate).exp();
    (0..days * DAY)
        .filter_map(|m| {
            let (mut k, mut p) = (0u32, 1.0);
            loop {
                p *= u.next().unwrap();
                if p <= limit {
                    break;
                }
                k += 1;
            }
            (k > 0).then_some((m, k))
        })
        .collect()
}

#[test]
fn the_runinstances_launch_example_is_exact() {
    let start = 7 * DAY + 13 * 60 + 25;
    let mut points: Vec<(i64, u32)> = (0..21).map(|i| (13 * 60 + 25 + 1 + i * 479, 1)).collect();
    points.push((start, 6));
    let s = series(&points);
    let episodes = detect_series(
        &s,
        day0().plus(DAY),
        day0().plus(9 * DAY),
        &DetectorConfig::default(),
    );
    assert_eq!(episodes.len(), 1, "{episodes:?}");
    let e = &episodes[0];
    assert_eq!(e.start, day0().plus(start));
    assert_eq!(e.end, Some(day0().plus(start + 1)));
    assert_eq!(
        e.baseline,
        ReportedBaseline {
            calls: 21,
            minutes: 10080
        }
    );
    assert!(!e.evidence.new_api);
}

#[test]
fn sparse_apis_called_a_few_times_a_week_do_not_fire() {
    for seed in 0..20 {
        let points: Vec<(i64, u32)> = uniforms(seed)
            .take(40)
            .collect::<Vec<_>>()
            .chunks(2)
            .map(|p| ((p[0] * 14.0 * DAY as f64) as i64, 1 + (p[1] * 3.0) as u32))
            .collect();
        assert_eq!(run(&points, 2, 14), vec![], "seed {seed}: {points:?}");
    }
}

#[test]
fn steady_traffic_does_not_fire_and_a_tenfold_spike_does() {
    for (rate, seed) in [(0.05, 1), (0.5, 2), (4.0, 3), (40.0, 4)] {
        let quiet = poisson_minutes(rate, 10, seed);
        assert_eq!(run(&quiet, 2, 10), vec![], "rate {rate}");
        let spike_at = 8 * DAY + 600;
        let mut spiked: Vec<(i64, u32)> = quiet
            .into_iter()
            .filter(|(m, _)| !(spike_at..spike_at + 5).contains(m))
            .collect();
        let level = ((rate * 10.0).ceil() as u32).max(12);
        spiked.extend((0..5).map(|i| (spike_at + i, level)));
        let found = run(&spiked, 2, 10);
        assert_eq!(found.len(), 1, "rate {rate}: {found:?}");
        assert_eq!(found[0].0, spike_at, "rate {rate}");
        let end = found[0].1.unwrap();
        assert!(
            (spike_at + 5..=spike_at + 6).contains(&end),
            "rate {rate}: end {end}"
        );
    }
}

#[test]
fn a_daily_clump_is_normal_but_ten_times_the_clump_fires() {
    let mut points: Vec<(i64, u32)> = (0..10).map(|d| (d * DAY + 120, 20)).collect();
    assert_eq!(run(&points, 2, 10), vec![]);
    points[8].1 = 200;
    assert_eq!(
        run(&points, 2, 10),
        vec![(8 * DAY + 120, Some(8 * DAY + 121))]
    );
}

#[test]
fn short_lulls_merge_and_long_ones_split() {
    let base = 5 * DAY;
    let two_bursts =
        |gap: i64, second: u32| vec![(base, 30), (base + 1, 30), (base + 2 + gap, second)];
    assert_eq!(run(&two_bursts(2, 30), 2, 8), vec![(base, Some(base + 5))]);
    // After an episode ends its minutes are baseline: a repeat of the same size is not news,
    // a much larger one is.
    assert_eq!(run(&two_bursts(10, 30), 2, 8), vec![(base, Some(base + 2))]);
    assert_eq!(
        run(&two_bursts(10, 600), 2, 8),
        vec![(base, Some(base + 2)), (base + 12, Some(base + 13))]
    );
}

#[test]
fn an_episode_running_into_the_end_of_the_range_stays_open() {
    let last = 6 * DAY - 3;
    assert_eq!(run(&[(last, 40)], 2, 6), vec![(last, None)]);
    assert_eq!(run(&[(last, 40)], 2, 7), vec![(last, Some(last + 1))]);
}

#[test]
fn warmup_and_new_apis_need_more() {
    assert_eq!(run(&[(DAY, 50)], 0, 3), vec![], "inside the 36 h warm-up");
    assert_eq!(run(&[(2 * DAY, 9)], 0, 3), vec![], "a new API needs 10");
    assert_eq!(
        run(&[(2 * DAY, 10)], 0, 3),
        vec![(2 * DAY, Some(2 * DAY + 1))]
    );
}

#[test]
fn short_history_shortens_the_reported_baseline() {
    let s = series(&[(0, 1), (3 * DAY, 1), (3 * DAY + 600, 30)]);
    let e = detect_series(&s, day0(), day0().plus(5 * DAY), &DetectorConfig::default());
    assert_eq!(e.len(), 1);
    assert_eq!(
        e[0].baseline,
        ReportedBaseline {
            calls: 2,
            minutes: 3 * DAY + 600
        }
    );
}

#[test]
fn a_level_shift_is_cut_at_the_longest_episode() {
    let mut points: Vec<(i64, u32)> = (0..5 * DAY).step_by(60).map(|m| (m, 1)).collect();
    points.extend((5 * DAY..7 * DAY).map(|m| (m, 50)));
    // One day-long episode, then the new level is part of the baseline.
    assert_eq!(run(&points, 5, 7), vec![(5 * DAY, Some(6 * DAY))]);
}

fn run_with(
    points: &[(i64, u32)],
    from_day: i64,
    until_day: i64,
    config: &DetectorConfig,
) -> Vec<Episode> {
    detect_series(
        &series(points),
        day0().plus(from_day * DAY),
        day0().plus(until_day * DAY),
        config,
    )
}

#[test]
fn a_tenfold_rise_over_three_minutes_fires_through_the_longer_windows() {
    for seed in 0..10 {
        let mut points = poisson_minutes(1.0, 10, 100 + seed);
        let spike_at = 8 * DAY + 600;
        points.retain(|(m, _)| !(spike_at..spike_at + 3).contains(m));
        // About ten calls a minute for three minutes, with the minute-to-minute noise of real traffic.
        points.extend([(spike_at, 9), (spike_at + 1, 8), (spike_at + 2, 11)]);
        let found = run(&points, 2, 10);
        assert_eq!(found.len(), 1, "seed {seed}: {found:?}");
        assert!((found[0].0 - spike_at).abs() <= 2, "seed {seed}: {found:?}");
    }
}

#[test]
fn office_hours_are_normal_and_a_night_burst_at_the_day_rate_is_not() {
    let mut u = uniforms(7);
    let mut points = Vec::new();
    for m in 0..10 * DAY {
        let hour = (m % DAY) / 60;
        let weekday = ![2, 3, 9].contains(&(m / DAY)); // 2019-11-02/03 and 11-09 are a weekend
        let rate: f64 = if weekday && (9..17).contains(&hour) {
            6.0
        } else {
            0.3
        };
        let (mut k, mut p, limit) = (0u32, 1.0, (-rate).exp());
        loop {
            p *= u.next().unwrap();
            if p <= limit {
                break;
            }
            k += 1;
        }
        if k > 0 {
            points.push((m, k));
        }
    }
    assert_eq!(
        run(&points, 2, 10),
        vec![],
        "the daily rise at 09:00 is the season, not news"
    );
    let night = 8 * DAY + 3 * 60;
    points.retain(|(m, _)| !(night..night + 10).contains(m));
    points.extend((0..10).map(|i| (night + i, 6)));
    let found = run(&points, 2, 10);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!((found[0].0 - night).abs() <= 2, "{found:?}");
}

#[test]
fn human_sessions_spread_over_minutes_are_normal() {
    // A few times a week someone makes 5-8 calls over about ten minutes.
    let mut u = uniforms(11);
    let mut points = Vec::new();
    for session in 0..12 {
        let at = session * 19 * 60 * 60 / 24 * 24 + (u.next().unwrap() * 600.0) as i64;
        let calls = 5 + (u.next().unwrap() * 4.0) as i64;
        for c in 0..calls {
            points.push((at + c * 2, 1));
        }
    }
    assert_eq!(run(&points, 2, 10), vec![]);
}

#[test]
fn drops_of_a_steady_api_are_reported_only_when_asked() {
    let mut points = poisson_minutes(5.0, 10, 21);
    let silent = 8 * DAY + 300;
    points.retain(|(m, _)| !(silent..silent + 60).contains(m));
    assert_eq!(run(&points, 2, 10), vec![], "drops are off by default");
    let config = DetectorConfig {
        detect_drops: true,
        ..DetectorConfig::default()
    };
    let found = run_with(&points, 2, 10, &config);
    assert_eq!(found.len(), 1, "{found:?}");
    let drop = &found[0];
    assert_eq!(drop.evidence.direction, Direction::Drop);
    assert!(
        (drop.start.0 - day0().plus(silent).0).abs() <= 1,
        "{drop:?}"
    );
    assert_eq!(drop.end, Some(day0().plus(silent + 60)));
}

#[test]
fn excluded_apis_and_time_windows_never_fire() {
    let points = vec![(0, 1), (5 * DAY + 120, 40)];
    let by_api = DetectorConfig {
        exclusions: Exclusions {
            apis: vec![("ec2.amazonaws.com".into(), "*".into())],
            windows: vec![],
        },
        ..DetectorConfig::default()
    };
    assert_eq!(run_with(&points, 2, 8, &by_api), vec![]);
    let by_window = |window| DetectorConfig {
        exclusions: Exclusions {
            apis: vec![],
            windows: vec![window],
        },
        ..DetectorConfig::default()
    };
    let nightly = TimeWindow::Daily {
        days: vec![],
        from: 60,
        to: 180,
    };
    assert_eq!(run_with(&points, 2, 8, &by_window(nightly)), vec![]);
    // Monday 23:00 to Tuesday 02:30 holds Tuesday 2019-11-05 02:00.
    let wrapping = TimeWindow::Daily {
        days: vec![Weekday::Mon],
        from: 23 * 60,
        to: 150,
    };
    assert_eq!(run_with(&points, 2, 8, &by_window(wrapping)), vec![]);
    let other_day = TimeWindow::Daily {
        days: vec![Weekday::Wed],
        from: 60,
        to: 180,
    };
    assert_eq!(run_with(&points, 2, 8, &by_window(other_day)).len(), 1);
}

/// The cheap pre-check must never skip a series the full rule would open an episode on: over
/// many random series (quiet, bursty, and with spikes of every width near the thresholds),
/// whenever it says no spike can open, the full detector finds none. And it must let through
/// every series that does fire, so some do (the check is not vacuous).
#[test]
fn the_pre_check_never_skips_a_series_that_fires() {
    let config = DetectorConfig::default();
    let mut random = uniforms(7);
    let (mut skipped, mut fired) = (0, 0);
    for seed in 0..400u64 {
        let rate = [0.001, 0.01, 0.05, 0.3][seed as usize % 4];
        let mut points = poisson_minutes(rate, 4, seed);
        // A burst on day 3: a few calls over up to 20 minutes, near the opening counts.
        let start = 3 * DAY + (random.next().unwrap() * (DAY - 30) as f64) as i64;
        let width = 1 + (random.next().unwrap() * 20.0) as i64;
        let calls = (random.next().unwrap() * 14.0) as u32;
        for k in 0..calls {
            points.push((start + (k as i64 * width) / calls.max(1) as i64, 1));
        }
        let series = series(&points);
        let span = Span {
            detect_from: day0().plus(3 * DAY),
            detect_until: day0().plus(4 * DAY),
        };
        let episodes = Detector::new(&series, &config).spikes(span);
        if !may_open_spike(&series, span, &config) {
            skipped += 1;
            assert!(
                episodes.is_empty(),
                "seed {seed}: skipped, yet {episodes:?}"
            );
        }
        fired += usize::from(!episodes.is_empty());
    }
    assert!(
        skipped > 50 && fired > 50,
        "skipped {skipped}, fired {fired}"
    );
}

/// A recurring job: on each day of `days` (offset from day0, with the start's jitter in
/// minutes), `calls` calls spread over `minutes` minutes from `at` (minute of the day), on a
/// background of a single call every 97 minutes.
fn job(days: &[(i64, i64)], at: i64, calls: u32, minutes: i64) -> Vec<(i64, u32)> {
    let mut points: Vec<(i64, u32)> = (0..11 * DAY).step_by(97).map(|m| (m, 1)).collect();
    for &(day, late) in days {
        let start = day * DAY + at + late;
        for i in 0..minutes {
            let share = calls / minutes as u32 + u32::from((i as u32) < calls % minutes as u32);
            points.push((start + i, share));
        }
    }
    points
}

/// Every day of 0..11 with a start jitter of 0-15 minutes, skipping `skipped`.
fn every_day(skipped: &[i64]) -> Vec<(i64, i64)> {
    let late = [0, 3, 15, 1, 0, 9, 12, 0, 6, 14, 2];
    (0..11)
        .filter(|d| !skipped.contains(d))
        .map(|d| (d, late[d as usize]))
        .collect()
}

#[test]
fn recurring_jobs_are_normal_at_their_time_and_fire_at_ten_times_their_size() {
    // (what, minute of the day, calls, minutes, skipped days)
    let cases: &[(&str, i64, u32, i64, &[i64])] = &[
        (
            "a 20:08 clean-up, as the issue's DeleteRule job",
            20 * 60 + 8,
            66,
            4,
            &[],
        ),
        ("on a 4-hour boundary", 16 * 60, 40, 2, &[]),
        ("across a 4-hour boundary", 4 * 60 - 2, 60, 5, &[]),
        ("a backup at 02:00 skipping days", 2 * 60, 25, 3, &[5, 8]),
        ("at midnight", 0, 30, 1, &[]),
    ];
    for &(what, at, calls, minutes, skipped) in cases {
        let days = every_day(skipped);
        let points = job(&days, at, calls, minutes);
        assert_eq!(run(&points, 7, 11), vec![], "{what}: an ordinary run fired");
        // Day 9's run is ten times its size.
        let tenfold: Vec<(i64, u32)> = points
            .iter()
            .map(|&(m, c)| {
                let late = days.iter().find(|(d, _)| *d == 9).map_or(0, |(_, l)| *l);
                let run = 9 * DAY + at + late..9 * DAY + at + late + minutes;
                (m, if run.contains(&m) { c * 10 } else { c })
            })
            .collect();
        let found = run(&tenfold, 7, 11);
        assert_eq!(found.len(), 1, "{what}: {found:?}");
        let late = days.iter().find(|(d, _)| *d == 9).unwrap().1;
        assert!(
            (found[0].0 - (9 * DAY + at + late)).abs() <= 2,
            "{what}: {found:?}"
        );
    }
}

#[test]
fn the_top_of_every_hour_is_a_habit() {
    let mut points: Vec<(i64, u32)> = (0..11 * DAY).step_by(97).map(|m| (m, 1)).collect();
    let mut u = uniforms(5);
    for hour in 0..11 * 24 {
        let late = (u.next().unwrap() * 3.0) as i64;
        points.push((hour * 60 + late, 6));
        points.push((hour * 60 + late + 1, 4));
    }
    assert_eq!(run(&points, 7, 11), vec![]);
    // Ten times one run fires.
    let at = 9 * DAY + 14 * 60;
    points.retain(|(m, _)| !(at..at + 5).contains(m));
    points.extend([(at, 60), (at + 1, 40)]);
    let found = run(&points, 7, 11);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, at);
}

#[test]
fn a_weekly_job_is_expected_a_week_later_and_ten_times_it_fires() {
    let monday_nine = 4 * DAY + 9 * 60; // 2019-11-04 is a Monday
    let weekly = |calls_now: u32| {
        let mut points: Vec<(i64, u32)> = (0..12 * DAY).step_by(97).map(|m| (m, 1)).collect();
        points.extend((0..3).map(|i| (monday_nine + i, 15)));
        points.extend((0..3).map(|i| (monday_nine + 7 * DAY + 6 + i, calls_now)));
        points
    };
    assert_eq!(run(&weekly(16), 10, 12), vec![]);
    let found = run(&weekly(160), 10, 12);
    assert_eq!(
        found.iter().map(|e| e.0).collect::<Vec<_>>(),
        vec![monday_nine + 7 * DAY + 6]
    );
}

#[test]
fn a_job_at_a_time_it_never_runs_is_judged_by_the_season() {
    // The 20:08 job's usual run, once at 09:37 instead: the habit does not cover it.
    let mut points = job(&every_day(&[]), 20 * 60 + 8, 66, 4);
    let odd = 9 * DAY + 9 * 60 + 37;
    points.extend((0..4).map(|i| (odd + i, 17)));
    let found = run(&points, 7, 11);
    assert!(found.iter().any(|e| e.0 == odd), "{found:?}");
}

#[test]
fn on_a_busy_api_the_habit_is_what_keeps_a_daily_job_quiet() {
    // A call a minute, and a job of 66 calls in 4 minutes at 20:08: its clumps are too rare
    // for the season's dispersion, so without habits every run fires.
    let mut points = poisson_minutes(1.0, 11, 3);
    for &(day, late) in &every_day(&[]) {
        let start = day * DAY + 20 * 60 + 8 + late;
        points.extend((0..4).map(|i| (start + i, 16)));
    }
    let off = DetectorConfig {
        habit_days: 0,
        clump_days: 0,
        ..DetectorConfig::default()
    };
    assert_eq!(run_with(&points, 7, 11, &off).len(), 4, "habits off");
    assert_eq!(run(&points, 7, 11), vec![], "habits on");
}

#[test]
fn a_window_across_a_season_boundary_takes_the_rates_of_its_minutes() {
    let s = series(&job(&every_day(&[]), 4 * 60 - 2, 60, 5));
    let index = BaselineIndex::new(&s, 5);
    let at = day0().plus(8 * DAY + 4 * 60 - 5); // the block 03:55-04:00, before the boundary
    let fit = index.fit(day0().plus(DAY), at);
    let before = fit.expected(at, at.plus(5), 5);
    let after = fit.expected(at.plus(5), at.plus(10), 5);
    let across = fit.expected(at.plus(3), at.plus(8), 5);
    assert!((across - (2.0 * before + 3.0 * after) / 5.0).abs() < 1e-9);
    assert!((before - fit.model.mean).abs() < 1e-9, "{fit:?}");
}

#[test]
fn a_nightly_batch_does_not_hide_a_burst_at_another_time_of_day() {
    // A busy reader (4 calls a minute) and a nightly batch in the same series: 30 minutes at
    // 20 times the reader from 01:00 (a few minutes late some nights), every night. Fitted
    // with the batch, the series looks so clumped that a burst of 10x the reader at 10:00 is
    // "one more clump"; the batch is the habit's, so the season is fitted without it.
    let mut points = poisson_minutes(4.0, 11, 11);
    for &(day, late) in &every_day(&[]) {
        let start = day * DAY + 60 + late;
        points.extend((0..30).map(|i| (start + i, 80)));
    }
    let burst = 9 * DAY + 10 * 60 + 7;
    let mut with_burst = points.clone();
    with_burst.extend((0..5).map(|i| (burst + i, 36)));
    assert_eq!(run(&points, 7, 11), vec![], "the batch is a habit");
    let found = run(&with_burst, 7, 11);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!((found[0].0 - burst).abs() <= 1, "{found:?}");
    // Without habits, the batch's clumps hide the burst.
    let off = DetectorConfig {
        habit_days: 0,
        ..DetectorConfig::default()
    };
    let without = run_with(&with_burst, 7, 11, &off);
    assert!(
        !without
            .iter()
            .any(|e| (e.start.0 - day0().0 - burst).abs() <= 1),
        "{without:?}"
    );
}

#[test]
fn habitual_blocks_are_the_runs_that_recur_at_one_time_of_day() {
    // The 20:08 job on 6 of the 7 days before day 8, and a clump of the same size once at
    // 09:37: only the job's minutes are left out of the seasonal fit.
    let mut points = job(&every_day(&[3]), 20 * 60 + 8, 60, 4);
    let odd = 5 * DAY + 9 * 60 + 37;
    points.extend((0..4).map(|i| (odd + i, 15)));
    let s = series(&points);
    let index = BaselineIndex::new(&s, 1);
    let rule = habit::RunRule {
        min_calls: 5.0,
        min_rate_ratio: 3.0,
        habit_days: 5,
        jitter: 15,
    };
    let removed = habit::habitual_blocks(&index, day0().plus(DAY), day0().plus(8 * DAY), rule)
        .until(day0().plus(8 * DAY));
    let calls: u64 = removed.iter().map(|r| r.calls).sum();
    let blocks: i64 = removed.iter().map(|r| r.minutes).sum();
    // (A background call may fall on a job's minute.)
    assert!((360..=362).contains(&calls) && blocks == 24, "{removed:?}");
    let off = habit::RunRule {
        habit_days: 0,
        ..rule
    };
    let none = habit::habitual_blocks(&index, day0().plus(DAY), day0().plus(8 * DAY), off);
    assert_eq!(none, habit::HabitualBlocks::default());
}

#[test]
fn a_job_is_judged_at_its_own_run_length_and_may_wander_at_its_own_size() {
    let background = || -> Vec<(i64, u32)> { (0..11 * DAY).step_by(97).map(|m| (m, 1)).collect() };
    // An hourly job whose 5-6 calls spread over two minutes (never 5 in one minute), once
    // with all 5 in its first minute: that minute's window is still its ordinary run.
    let mut hourly = background();
    let mut u = uniforms(11);
    for hour in 0..11 * 24 {
        let late = (u.next().unwrap() * 3.0) as i64;
        if hour == 9 * 24 {
            hourly.push((hour * 60 + late, 5));
        } else {
            hourly.extend([
                (hour * 60 + late, 3),
                (hour * 60 + late + 1, 2 + (hour % 2) as u32),
            ]);
        }
    }
    // A nightly job chained after another: usually 01:30-01:40, 30 calls over 3 minutes, and
    // on day 9 45 minutes late, further than the jitter from every earlier run.
    let late = [0, 5, 10, 2, 8, 0, 6, 3, 9, 45, 4];
    let nightly = |day9: u32| {
        let mut points = background();
        for (day, l) in late.iter().enumerate() {
            let start = day as i64 * DAY + 90 + l;
            let calls = if day == 9 { day9 } else { 10 };
            points.extend((0..3).map(|i| (start + i, calls)));
        }
        points
    };
    let day9 = 9 * DAY + 90 + late[9];
    // (what, points, Starts)
    type Case = (&'static str, Vec<(i64, u32)>, Vec<i64>);
    let cases: Vec<Case> = vec![
        ("hourly, 5 calls in one minute", hourly, vec![]),
        // 27 calls, no more than an earlier run (one background call more than the job's
        // largest run would be news: the rule is strict, see habit::drifting_run).
        ("wandering nightly job, ordinary run", nightly(9), vec![]),
        (
            "wandering nightly job, ten times its run",
            nightly(100),
            vec![day9],
        ),
    ];
    for (what, points, want) in cases {
        let found: Vec<i64> = run(&points, 7, 11).iter().map(|e| e.0).collect();
        assert_eq!(found, want, "{what}");
    }
}

#[test]
fn clumps_the_baseline_held_on_two_days_are_ordinary_and_far_larger_ones_fire() {
    // Log streams of a scale-out: a call every five minutes, and on each day one or two
    // clumps of 17-24 calls over 4 minutes at a random time of day (not a habit).
    let mut u = uniforms(5);
    let mut points = poisson_minutes(0.2, 11, 21);
    let clump = |points: &mut Vec<(i64, u32)>, at: i64, calls: u32| {
        for i in 0..calls {
            points.push((at + i64::from(i % 4), 1));
        }
    };
    for day in 0..8 {
        for _ in 0..1 + (u.next().unwrap() * 2.0) as usize {
            let at = day * DAY + 60 + (u.next().unwrap() * 1300.0) as i64;
            clump(&mut points, at, 17 + (u.next().unwrap() * 8.0) as u32);
        }
    }
    // The analysed days: one clump of 21 on day 8, one of 120 on day 9, none on day 10.
    clump(&mut points, 8 * DAY + 15 * 60 + 7, 21);
    clump(&mut points, 9 * DAY + 11 * 60 + 31, 120);
    let off = DetectorConfig {
        clump_days: 0,
        ..DetectorConfig::default()
    };
    let starts = |config: &DetectorConfig| -> Vec<i64> {
        run_with(&points, 8, 11, config)
            .iter()
            .map(|e| e.start.0 - day0().0)
            .collect()
    };
    let without = starts(&off);
    assert!(
        without
            .iter()
            .any(|s| (s - (8 * DAY + 15 * 60 + 7)).abs() <= 2),
        "the negative binomial finds the ordinary clump improbable: {without:?}"
    );
    assert_eq!(
        starts(&DetectorConfig::default()),
        vec![9 * DAY + 11 * 60 + 31],
        "only the clump five times the usual size fires"
    );
}
