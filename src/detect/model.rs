//! The count model behind every decision: what a minute's count looks like when nothing is
//! unusual, fitted from the baseline window, and how surprising an observed count is under it.
//!
//! Per-minute API counts are counts, often sparse (an API called a few times a week) and often
//! clumped (a deploy calls the same API five times in one minute, once a day). So the model is a
//! count distribution, not a z-score:
//! - mean: `(N + PRIOR_CALLS) / D` calls per minute, from `N` calls in the `D` baseline minutes;
//!   the half-call prior keeps an API never seen before from having a zero rate.
//! - dispersion: when the baseline's per-minute variance exceeds its mean (clumped traffic), a
//!   negative binomial with size `k = mean^2 / (variance - mean)` (method of moments); else
//!   Poisson. A clumped baseline makes clumps of the same size unsurprising, while a clump ten
//!   times larger is still far in the tail.
//! - surprise: the upper tail `P(X >= c)` of the fitted distribution, computed with regularized
//!   incomplete gamma and beta functions, accurate far into the tail.

use statrs::distribution::{DiscreteCDF, NegativeBinomial, Poisson};

/// Pseudo-calls added to the baseline count when estimating the rate.
pub const PRIOR_CALLS: f64 = 0.5;
/// Variance must exceed the mean by this factor before dispersion is modelled.
pub const OVERDISPERSION_MARGIN: f64 = 1.05;

/// Sums over the baseline window.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct WindowSums {
    /// Calls in the window.
    pub calls: u64,
    /// Sum over minutes of the squared per-minute count.
    pub squares: f64,
    /// Minutes in the window.
    pub minutes: i64,
}

/// A fitted per-minute count distribution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CountModel {
    /// Expected calls per minute.
    pub mean: f64,
    /// Negative binomial size; `None` for Poisson.
    pub size: Option<f64>,
}

impl CountModel {
    pub fn fit(sums: WindowSums) -> CountModel {
        let minutes = sums.minutes.max(1) as f64;
        let observed_mean = sums.calls as f64 / minutes;
        let variance = (sums.squares / minutes - observed_mean * observed_mean).max(0.0);
        let mean = (sums.calls as f64 + PRIOR_CALLS) / minutes;
        let size = (sums.calls >= 2 && variance > observed_mean * OVERDISPERSION_MARGIN)
            .then(|| observed_mean * observed_mean / (variance - observed_mean));
        CountModel { mean, size }
    }

    /// `P(X >= count)` under the model.
    pub fn upper_tail(&self, count: u32) -> f64 {
        if count == 0 {
            return 1.0;
        }
        let at_most = u64::from(count - 1);
        let tail = match self.size {
            Some(k) => match NegativeBinomial::new(k, k / (k + self.mean)) {
                Ok(nb) => nb.sf(at_most),
                Err(_) => 1.0,
            },
            None => match Poisson::new(self.mean) {
                Ok(p) => p.sf(at_most),
                Err(_) => 1.0,
            },
        };
        if tail.is_nan() {
            1.0
        } else {
            tail.clamp(0.0, 1.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sums(calls: u64, squares: f64, minutes: i64) -> WindowSums {
        WindowSums {
            calls,
            squares,
            minutes,
        }
    }

    #[test]
    fn sparse_singletons_make_a_burst_of_six_extreme() {
        // 21 single calls in a week, then 6 in one minute: the RunInstances launch example.
        let m = CountModel::fit(sums(21, 21.0, 10080));
        assert_eq!(m.size, None);
        assert!(m.upper_tail(6) < 1e-15, "{}", m.upper_tail(6));
        assert!(m.upper_tail(1) > 1e-3);
    }

    #[test]
    fn a_daily_clump_is_ordinary_but_ten_times_the_clump_is_not() {
        // A nightly job: 20 calls in one minute, once a day for 7 days.
        let m = CountModel::fit(sums(140, 7.0 * 400.0, 10080));
        assert!(m.size.is_some());
        assert!(m.upper_tail(20) > 1e-4, "{}", m.upper_tail(20));
        assert!(m.upper_tail(200) < 1e-7, "{}", m.upper_tail(200));
    }

    #[test]
    fn tails_are_monotone_and_bounded() {
        for model in [
            CountModel::fit(sums(0, 0.0, 10080)),
            CountModel::fit(sums(1_000_000, 1.2e8, 10080)),
            CountModel::fit(sums(50, 2500.0, 100)),
        ] {
            let mut last = 1.0;
            for c in [0, 1, 2, 5, 10, 100, 1000, 100_000] {
                let t = model.upper_tail(c);
                assert!((0.0..=1.0).contains(&t), "{model:?} {c} {t}");
                assert!(t <= last + 1e-12, "{model:?} {c} {t} > {last}");
                last = t;
            }
        }
    }
}
