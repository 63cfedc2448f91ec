//! The baseline of one series: window sums in O(log n), split by coarse season, and the count
//! model fitted from them for any minute.
//!
//! Seasonality is pooled coarsely enough to be estimated from 7 days: 4-hour blocks of the UTC
//! day, separately for weekdays and weekends (12 bins; a weekday bin has 5 x 240 minutes of
//! data per week, a weekend bin 2 x 240). Each bin's rate is shrunk toward the series' overall
//! rate by a gamma prior worth `SEASON_PRIOR_CALLS` calls at the overall rate, so a sparse API
//! keeps essentially a flat rate while a busy API with office hours gets a day and a night rate. Dispersion is estimated
//! from the residuals around those seasonal rates, so the day/night swing itself does not
//! count as burstiness.
//!
//! An index is built for each series and day analysed, so it is built cheaply: one pass over
//! the active minutes for the calls, and the squares and per-bin sums only when a model is
//! first fitted (`fit_sums`); every sum is the same whenever it is made.

use super::model::{CountModel, OVERDISPERSION_MARGIN, PRIOR_CALLS, WindowSums};
use crate::aggregate::Series;
use crate::model::{MINUTES_PER_DAY, Minute};
use std::borrow::Cow;
use std::cell::OnceCell;

/// Hours per seasonal block.
pub const BLOCK_HOURS: i64 = 4;
/// Blocks per day.
const BLOCKS_PER_DAY: usize = (24 / BLOCK_HOURS) as usize;
/// Seasonal bins: blocks of weekdays, then blocks of weekends.
pub const BINS: usize = 2 * BLOCKS_PER_DAY;
/// Pseudo-calls at the overall rate added to every bin (with the minutes they take).
pub const SEASON_PRIOR_CALLS: f64 = 5.0;

/// The seasonal bin of a minute.
pub fn bin_of(minute: Minute) -> usize {
    // 1970-01-01 was a Thursday, so (days since the epoch + 3) mod 7 is 0 on Mondays. Plain
    // arithmetic: this runs for every block of every series on every detection.
    let weekday_from_monday = (minute.0.div_euclid(MINUTES_PER_DAY) + 3).rem_euclid(7);
    let weekend = weekday_from_monday >= 5;
    let block = (minute.0.rem_euclid(MINUTES_PER_DAY) / (BLOCK_HOURS * 60)) as usize;
    usize::from(weekend) * BLOCKS_PER_DAY + block
}

/// Minutes of `[from, to)` in each bin.
fn minutes_per_bin(from: Minute, to: Minute) -> [i64; BINS] {
    let mut out = [0i64; BINS];
    let block = BLOCK_HOURS * 60;
    let mut t = from.0;
    while t < to.0 {
        let next = ((t.div_euclid(block)) + 1) * block;
        let end = next.min(to.0);
        out[bin_of(Minute(t))] += end - t;
        t = end;
    }
    out
}

/// Prefix sums of a series' counts aggregated into blocks of `block` minutes (aligned to UTC
/// multiples of the block), overall and per bin. With `block == 1` the counts are per minute.
/// The calls are summed when the index is built; the squares and the per-bin sums only when a
/// model is first fitted on it (`fit_sums`): most per-minute indexes only count calls.
pub struct BaselineIndex<'a> {
    block: i64,
    /// The first minute of each active block, ascending: the series' own minutes when blocks
    /// are minutes.
    minutes: Cow<'a, [Minute]>,
    calls: Vec<u64>,
    /// What fitting a model reads beyond the calls, made once on first use.
    fit_sums: OnceCell<FitSums>,
}

/// The squares' prefix sums, and per bin, the positions (into `minutes`) of its active blocks
/// and their prefix sums, all bins in one allocation each (a detection builds several indexes
/// per series per day).
struct FitSums {
    squares: Vec<f64>,
    bins: BinIndex,
}

/// Bin `k`'s positions are `positions[offsets[k]..offsets[k + 1]]`; its prefix sums (one
/// longer, from 0) start at `offsets[k] + k` in `calls` and `squares`.
struct BinIndex {
    offsets: [usize; BINS + 1],
    positions: Vec<usize>,
    calls: Vec<u64>,
    squares: Vec<f64>,
}

impl BinIndex {
    /// The index of the blocks whose seasonal bins are `bins` and calls `calls` (in order).
    fn new(bins: &[u8], calls: &[u64]) -> BinIndex {
        let mut offsets = [0usize; BINS + 1];
        for &bin in bins {
            offsets[usize::from(bin) + 1] += 1;
        }
        for k in 0..BINS {
            offsets[k + 1] += offsets[k];
        }
        let mut positions = vec![0; bins.len()];
        let mut sums = vec![0; bins.len() + BINS];
        let mut squares = vec![0.0; bins.len() + BINS];
        let mut next = offsets;
        for (i, (&bin, &c)) in bins.iter().zip(calls).enumerate() {
            let bin = usize::from(bin);
            let at = next[bin];
            next[bin] += 1;
            positions[at] = i;
            // Prefix entry `at - offsets[bin] + 1` of the bin, after its leading 0.
            let sum = at + bin + 1;
            sums[sum] = sums[sum - 1] + c;
            squares[sum] = squares[sum - 1] + (c as f64) * (c as f64);
        }
        BinIndex {
            offsets,
            positions,
            calls: sums,
            squares,
        }
    }
}

impl<'a> BaselineIndex<'a> {
    /// The index of `series` in blocks of `block` minutes. One pass over the active minutes
    /// (a detection builds an index per window length for each series and day it analyses): a
    /// block's start is computed only where a minute passes the end of the last block.
    pub fn new(series: &'a Series<'_>, block: i64) -> BaselineIndex<'a> {
        let block = block.max(1);
        let active = series.minutes.len();
        let mut calls: Vec<u64> = Vec::with_capacity(active + 1);
        calls.push(0);
        let mut sum = 0u64;
        if block == 1 {
            for cell in series.cells.iter() {
                sum += u64::from(cell.count);
                calls.push(sum);
            }
            return BaselineIndex {
                block,
                minutes: Cow::Borrowed(&series.minutes[..]),
                calls,
                fit_sums: OnceCell::new(),
            };
        }
        let mut minutes: Vec<Minute> = Vec::with_capacity(active);
        let mut block_end = i64::MIN;
        for (minute, cell) in series.minutes.iter().zip(series.cells.iter()) {
            sum += u64::from(cell.count);
            // Minutes ascend: one before the last block's end is in that block.
            if minute.0 < block_end
                && let Some(last) = calls.last_mut()
            {
                *last = sum;
                continue;
            }
            let start = minute.0.div_euclid(block) * block;
            block_end = start + block;
            minutes.push(Minute(start));
            calls.push(sum);
        }
        BaselineIndex {
            block,
            minutes: Cow::Owned(minutes),
            calls,
            fit_sums: OnceCell::new(),
        }
    }

    /// The squares and per-bin sums, made on first use: one pass over the blocks, each block's
    /// seasonal bin found only where it passes the end of the last bin's 4-hour span.
    fn fit_sums(&self) -> &FitSums {
        self.fit_sums.get_or_init(|| {
            let blocks = self.minutes.len();
            let mut counts = Vec::with_capacity(blocks);
            let mut bins: Vec<u8> = Vec::with_capacity(blocks);
            let mut squares = Vec::with_capacity(blocks + 1);
            let mut square_sum = 0.0f64;
            squares.push(square_sum);
            let (mut bin_end, mut bin) = (i64::MIN, 0u8);
            let span = BLOCK_HOURS * 60;
            for (i, minute) in self.minutes.iter().enumerate() {
                let c = self.calls[i + 1] - self.calls[i];
                // Block starts ascend: one before the end of the 4-hour span the last bin
                // was found for starts in that span, and so has its bin.
                if minute.0 >= bin_end {
                    bin = bin_of(*minute) as u8;
                    bin_end = (minute.0.div_euclid(span) + 1) * span;
                }
                square_sum += (c as f64) * (c as f64);
                squares.push(square_sum);
                counts.push(c);
                bins.push(bin);
            }
            FitSums {
                squares,
                bins: BinIndex::new(&bins, &counts),
            }
        })
    }

    fn position(&self, minute: Minute) -> usize {
        self.minutes.partition_point(|m| *m < minute)
    }

    /// Sums over the blocks starting in `[from, to)`; `minutes` counts blocks.
    pub fn sums(&self, from: Minute, to: Minute) -> WindowSums {
        let (a, b) = (self.position(from), self.position(to));
        let squares = &self.fit_sums().squares;
        WindowSums {
            calls: self.calls[b] - self.calls[a],
            squares: squares[b] - squares[a],
            minutes: (to.0 - from.0).max(0) / self.block,
        }
    }

    /// Calls in `[from, to)`.
    pub fn calls(&self, from: Minute, to: Minute) -> u64 {
        let (a, b) = (self.position(from), self.position(to));
        self.calls[b] - self.calls[a]
    }

    /// Calls from `from` through the active block at position `last` (its first minute is
    /// `minutes[last]`): [`calls`](Self::calls) for a window ending at a known block, without
    /// a search of the whole index (the window's other end is found among the blocks that fit
    /// between `from` and that block).
    pub fn calls_through(&self, from: Minute, last: usize) -> u64 {
        let span = (self.minutes[last].0 - from.0).max(0) / self.block + 1;
        let earliest = last + 1 - (span.min(last as i64 + 1) as usize);
        let a = earliest + self.minutes[earliest..=last].partition_point(|m| *m < from);
        self.calls[last + 1] - self.calls[a]
    }

    /// The most calls in a window `[s, s + length)` over the starts `earliest <= s <= latest`
    /// (minutes; for the per-minute index). Moving a window's start right until it reaches an
    /// active minute (or `latest`) never loses calls, so only those starts are tried.
    pub fn max_window_calls(&self, earliest: Minute, latest: Minute, length: i64) -> u64 {
        let window = |s: Minute| self.calls(s, s.plus(length));
        let (a, b) = (self.position(earliest), self.position(latest.plus(1)));
        self.minutes[a..b]
            .iter()
            .map(|s| window(*s))
            .fold(window(latest), u64::max)
    }

    /// The most calls of one *run* starting at `earliest <= s <= latest` (minutes; for the
    /// per-minute index): a run is a clump of consecutive active minutes, at most
    /// `max_minutes` long (a longer clump is ordinary busy traffic, not one job's run), with
    /// at least `min_per_minute` calls a minute on average (so the chance clumps of an API
    /// called every minute or so are not runs); 0 without one. A recurring job whose calls
    /// spread over a few minutes is measured whole this way, whatever window length it is
    /// compared with.
    pub fn max_run_calls(
        &self,
        earliest: Minute,
        latest: Minute,
        max_minutes: i64,
        min_per_minute: f64,
    ) -> u64 {
        let (a, b) = (self.position(earliest), self.position(latest.plus(1)));
        let mut best = 0;
        for i in a..b {
            if i > 0 && self.minutes[i - 1].0 == self.minutes[i].0 - 1 {
                continue; // not the clump's first minute
            }
            let mut j = i + 1;
            while j < self.minutes.len()
                && self.minutes[j].0 == self.minutes[j - 1].0 + 1
                && self.minutes[j].0 - self.minutes[i].0 < max_minutes
            {
                j += 1;
            }
            let longer = j < self.minutes.len() && self.minutes[j].0 == self.minutes[j - 1].0 + 1;
            let (calls, minutes) = (
                self.calls[j] - self.calls[i],
                self.minutes[j - 1].0 - self.minutes[i].0 + 1,
            );
            if !longer && calls as f64 >= min_per_minute * minutes as f64 {
                best = best.max(calls);
            }
        }
        best
    }

    /// Sums over `[from, to)` split by seasonal bin; `minutes` counts blocks.
    fn bin_sums(&self, from: Minute, to: Minute) -> [WindowSums; BINS] {
        let (a, b) = (self.position(from), self.position(to));
        let minutes = minutes_per_bin(from, to).map(|m| m / self.block);
        let bins = &self.fit_sums().bins;
        std::array::from_fn(|k| {
            let positions = &bins.positions[bins.offsets[k]..bins.offsets[k + 1]];
            let sums = bins.offsets[k] + k;
            let (ba, bb) = (
                sums + positions.partition_point(|p| *p < a),
                sums + positions.partition_point(|p| *p < b),
            );
            WindowSums {
                calls: bins.calls[bb] - bins.calls[ba],
                squares: bins.squares[bb] - bins.squares[ba],
                minutes: minutes[k],
            }
        })
    }

    /// The block length in minutes.
    pub fn block(&self) -> i64 {
        self.block
    }

    /// The active blocks starting in `[from, to)`: first minute and calls.
    pub fn blocks(&self, from: Minute, to: Minute) -> impl Iterator<Item = (Minute, u64)> + '_ {
        let (a, b) = (self.position(from), self.position(to));
        (a..b).map(|i| (self.minutes[i], self.calls[i + 1] - self.calls[i]))
    }

    /// The most calls of one block starting in `[from, to)`; 0 without an active block.
    pub fn max_block_calls(&self, from: Minute, to: Minute) -> u64 {
        self.blocks(from, to).map(|(_, c)| c).max().unwrap_or(0)
    }

    /// The model of one block starting at `at`, fitted on the blocks of `[from, at)`. Both
    /// ends must be multiples of the block size.
    pub fn fit(&self, from: Minute, at: Minute) -> Fit {
        self.fit_without(from, at, &[WindowSums::default(); BINS])
    }

    /// [`fit`](Self::fit) with some blocks of `[from, at)` left out of the data, as if never
    /// observed: `removed` holds their calls, squares and number per bin (the runs of
    /// recurring jobs, which the habit explains; see `habit::habitual_blocks`).
    pub fn fit_without(&self, from: Minute, at: Minute, removed: &[WindowSums; BINS]) -> Fit {
        let mut total = self.sums(from, at);
        let mut by_bin = self.bin_sums(from, at);
        for (s, r) in by_bin.iter_mut().zip(removed) {
            s.calls -= r.calls.min(s.calls);
            s.squares = (s.squares - r.squares).max(0.0);
            s.minutes = (s.minutes - r.minutes).max(0);
            total.calls -= r.calls.min(total.calls);
            total.squares = (total.squares - r.squares).max(0.0);
            total.minutes = (total.minutes - r.minutes).max(0);
        }
        let minutes = total.minutes.max(1) as f64;
        let overall = (total.calls as f64 + PRIOR_CALLS) / minutes;
        let rates: [f64; BINS] = std::array::from_fn(|k| {
            let s = by_bin[k];
            (s.calls as f64 + SEASON_PRIOR_CALLS)
                / (s.minutes as f64 + SEASON_PRIOR_CALLS / overall)
        });
        // Residual squares around the seasonal rates, and the expected calls they imply.
        let (mut residual, mut expected, mut expected_sq) = (0.0, 0.0, 0.0);
        for (s, mu) in by_bin.iter().zip(rates) {
            let d = s.minutes as f64;
            residual += s.squares - 2.0 * mu * s.calls as f64 + mu * mu * d;
            expected += mu * d;
            expected_sq += mu * mu * d;
        }
        let size = (total.calls >= 2 && residual > expected * OVERDISPERSION_MARGIN)
            .then(|| expected_sq / (residual - expected))
            .filter(|k| k.is_finite() && *k > 0.0);
        let bin = bin_of(at);
        Fit {
            model: CountModel {
                mean: rates[bin],
                size,
            },
            baseline_calls: total.calls,
            bin,
            rates,
        }
    }
}

/// A fitted baseline for one minute.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fit {
    /// The count distribution of one block in this block's seasonal bin.
    pub model: CountModel,
    /// Calls in the fitted window.
    pub baseline_calls: u64,
    pub bin: usize,
    /// Expected calls per block in each seasonal bin (`model.mean` is `rates[bin]`).
    pub rates: [f64; BINS],
}

impl Fit {
    /// Expected calls in the minutes `[from, to)`, each minute at its own season's rate (a
    /// block's rate spread evenly over its minutes): a window that crosses a seasonal boundary
    /// takes the expectation of the minutes it covers.
    pub fn expected(&self, from: Minute, to: Minute, block: i64) -> f64 {
        let minutes = minutes_per_bin(from, to);
        minutes
            .iter()
            .zip(self.rates)
            .map(|(m, rate)| *m as f64 * rate)
            .sum::<f64>()
            / block.max(1) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::parse_day;

    fn series(points: &[(i64, u32)]) -> Series<'static> {
        let day0 = Minute::start_of_day(parse_day("2019-11-04").unwrap()); // a Monday
        crate::detect::tests::series_from(day0, ("s", "n"), points)
    }

    #[test]
    fn a_run_is_a_clump_of_consecutive_minutes_no_longer_than_the_bound() {
        // Clumps: 10-11 (3+4 calls), 20 (6), 30-49 (20 minutes of 1), 60-62 (2+2+2).
        let mut points = vec![(10, 3), (11, 4), (20, 6)];
        points.extend((30..50).map(|m| (m, 1)));
        points.extend([(60, 2), (61, 2), (62, 2)]);
        let s = series(&points);
        let index = BaselineIndex::new(&s, 1);
        let day0 = index.minutes[0].plus(-10);
        let at = |m: i64| day0.plus(m);
        // (earliest, latest, longest run, fewest calls a minute, most calls of one run
        // starting in the range)
        let cases = [
            (0, 15, 15, 1.0, 7),  // the two-minute run counts whole
            (11, 15, 15, 1.0, 0), // 11 is not a run's first minute
            (0, 25, 15, 1.0, 7),
            (15, 25, 15, 1.0, 6),
            (25, 35, 15, 1.0, 0), // a 20-minute clump is busy traffic, not a run
            (25, 35, 20, 1.0, 20), // unless runs may be that long
            (25, 35, 20, 1.5, 0), // ... and one call a minute is enough
            (55, 65, 2, 1.0, 0),  // three minutes are longer than 2
            (55, 65, 3, 1.0, 6),
            (0, 25, 15, 3.6, 6), // 7 calls in 2 minutes are too few, 6 in 1 are not
        ];
        for (earliest, latest, longest, rate, want) in cases {
            assert_eq!(
                index.max_run_calls(at(earliest), at(latest), longest, rate),
                want,
                "[{earliest}, {latest}] runs <= {longest} of >= {rate}/min"
            );
        }
    }

    #[test]
    fn weekends_agree_with_the_calendar() {
        use chrono::Datelike;
        for days in -800..800 {
            let noon = Minute(days * MINUTES_PER_DAY + 12 * 60);
            let weekend = noon.day().weekday().number_from_monday() >= 6;
            assert_eq!(bin_of(noon) >= BLOCKS_PER_DAY, weekend, "{}", noon.day());
        }
    }

    #[test]
    fn bins_follow_blocks_and_weekends() {
        let monday = Minute::start_of_day(parse_day("2019-11-04").unwrap());
        assert_eq!(bin_of(monday), 0);
        assert_eq!(bin_of(monday.plus(13 * 60)), 3);
        assert_eq!(bin_of(monday.plus(5 * MINUTES_PER_DAY)), BLOCKS_PER_DAY);
        let counts = minutes_per_bin(monday, monday.plus(7 * MINUTES_PER_DAY));
        assert_eq!(counts[0], 5 * 240);
        assert_eq!(counts[BLOCKS_PER_DAY], 2 * 240);
        assert_eq!(counts.iter().sum::<i64>(), 7 * MINUTES_PER_DAY);
    }

    #[test]
    fn office_hours_get_a_day_rate_and_a_night_rate() {
        // 10 calls a minute from 08:00 to 16:00 on weekdays, 1 a minute otherwise.
        let points: Vec<(i64, u32)> = (0..7 * MINUTES_PER_DAY)
            .map(|m| {
                let hour = (m % MINUTES_PER_DAY) / 60;
                let weekday = m / MINUTES_PER_DAY < 5;
                (
                    m,
                    if weekday && (8..16).contains(&hour) {
                        10
                    } else {
                        1
                    },
                )
            })
            .collect();
        let s = series(&points);
        let index = BaselineIndex::new(&s, 1);
        let from = s.history_from;
        let end = from.plus(7 * MINUTES_PER_DAY);
        let day = index.fit(from, end.plus(9 * 60)).model;
        let night = index.fit(from, end.plus(2 * 60)).model;
        assert!((day.mean - 10.0).abs() < 0.5, "{day:?}");
        assert!((night.mean - 1.0).abs() < 0.2, "{night:?}");
        // The swing is explained by the bins, not mistaken for burstiness.
        assert!(day.size.is_none_or(|k| k > 50.0), "{day:?}");
        // Aggregated into 15-minute blocks, the day rate is per block.
        let blocks = BaselineIndex::new(&s, 15);
        let day15 = blocks.fit(from, end.plus(9 * 60)).model;
        assert!(
            (day15.mean - 15.0 * day.mean).abs() < 2.0,
            "{day15:?} vs {day:?}"
        );
    }
    /// Window sums, overall and per bin, against plain sums over the blocks, for random sparse
    /// series over two weeks and random block-aligned windows.
    #[test]
    fn window_sums_agree_with_plain_sums() {
        let mut state = 0x2545F4914F6CDD1Du64;
        let mut next = move |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        for _ in 0..40 {
            let density = 1 + next(50);
            let mut points: Vec<(i64, u32)> = Vec::new();
            for m in 0..14 * MINUTES_PER_DAY {
                if next(1000) < density {
                    points.push((m, 1 + next(9) as u32));
                }
            }
            let s = series(&points);
            for block in [1, 5, 15] {
                let index = BaselineIndex::new(&s, block);
                for _ in 0..20 {
                    let a = next(14 * MINUTES_PER_DAY as u64 / block as u64) as i64 * block;
                    let b = a + next(8 * MINUTES_PER_DAY as u64 / block as u64) as i64 * block;
                    let (from, to) = (s.history_from.plus(a), s.history_from.plus(b));
                    let (mut calls, mut squares) = ([0u64; BINS], [0f64; BINS]);
                    let mut blocks: Vec<(Minute, u64)> = Vec::new();
                    for (m, cell) in s.minutes.iter().zip(s.cells.iter()) {
                        let start = Minute(m.0.div_euclid(block) * block);
                        match blocks.last_mut() {
                            Some((last, n)) if *last == start => *n += u64::from(cell.count),
                            _ => blocks.push((start, u64::from(cell.count))),
                        }
                    }
                    for (m, c) in blocks.iter().filter(|(m, _)| from <= *m && *m < to) {
                        calls[bin_of(*m)] += c;
                        squares[bin_of(*m)] += (*c as f64).powi(2);
                    }
                    let by_bin = index.bin_sums(from, to);
                    for k in 0..BINS {
                        assert_eq!(by_bin[k].calls, calls[k], "bin {k}, block {block}");
                        assert_eq!(by_bin[k].squares, squares[k], "bin {k}, block {block}");
                    }
                    assert_eq!(index.sums(from, to).calls, calls.iter().sum::<u64>());
                }
            }
        }
    }
}
