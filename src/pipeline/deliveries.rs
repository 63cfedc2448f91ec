//! Whether the logs arrived: a day folder with no log object in any partition
//! (`days_without_logs`), a partition that went quiet while it usually delivers
//! (`delivery_gaps`), and a backfill that found nothing at all. Judged from the folders this
//! run listed and the per-folder counts the state keeps, so a nightly judges as a backfill does.

use super::{BASELINE_DAYS, DayRange, DeliveryGap, Progress, Run};
use chrono::{Duration, NaiveDate};

impl Run<'_> {
    /// Log objects found in the day folder of `day`, over every partition (`None` when one of
    /// its folders could not be listed, or this run did not list it: then nobody can tell).
    fn delivered(&self, day: NaiveDate) -> Option<u64> {
        if self.failed_folders.iter().any(|(_, d)| *d == day) {
            return None;
        }
        let counts: Vec<u64> = self
            .found
            .iter()
            .filter(|((_, d), _)| *d == day)
            .map(|(_, n)| *n)
            .collect();
        (!counts.is_empty()).then(|| counts.iter().sum())
    }

    /// A day for which no partition delivered any log object is a delivery gap: warned,
    /// named in the summary (`days_without_logs`), exit 4.
    pub(super) fn check_delivered(&mut self, day: NaiveDate) {
        if self.delivered(day) != Some(0) {
            return;
        }
        tracing::warn!(
            "delivery gap: no log object in the {day} folder of any of the {} partition(s) under {}; \
             has the trail stopped logging, or its bucket policy changed?",
            self.partitions.len(),
            self.summary.source
        );
        self.summary.days_without_logs.push(day.to_string());
    }

    /// Remember what each partition delivered in the folders up to `day` (listed by this run),
    /// then apply the delivery-gap rule to `day`'s folder: a partition that delivered log
    /// objects on at least `GAP_MIN_ACTIVE_DAYS` of the 7 days before, usually at least
    /// `GAP_MIN_USUAL` a day (the median of those days), and under a tenth of that (none, say)
    /// that day has gone quiet: warned, named in the summary (`delivery_gaps`), exit 4. A
    /// partition that is withheld, or whose folder was not listed, is not judged.
    pub(super) fn check_partition_deliveries(&mut self, progress: &mut Progress, day: NaiveDate) {
        for (&(index, folder), &count) in &self.found {
            if folder <= day
                && let Some(p) = self.partitions.get(index)
            {
                let id = (p.account.clone(), p.region.clone());
                progress
                    .deliveries
                    .entry(id)
                    .or_default()
                    .insert(folder, count);
            }
        }
        let oldest = day - Duration::days(BASELINE_DAYS + 1);
        for days in progress.deliveries.values_mut() {
            days.retain(|d, _| *d >= oldest);
        }
        // Judged while the trail goes on delivering after `day` elsewhere: a data set that
        // simply ends (its last folder holding only late deliveries) is no gap.
        let trail_goes_on = self.found.iter().any(|(&(_, f), &n)| f > day && n > 0);
        // A nightly's day is settled: when no partition delivered anything (the trail stopped
        // logging, its bucket policy changed), each one that delivered regularly is a gap of
        // its own too, announced like one that went quiet alone.
        let trail_dark = self.nightly && self.delivered(day) == Some(0);
        if !trail_goes_on && !trail_dark {
            return;
        }
        for (index, p) in self.partitions.iter().enumerate() {
            let id = (p.account.clone(), p.region.clone());
            let Some(&seen) = self.found.get(&(index, day)) else {
                continue;
            };
            if self.withheld.contains(&id) || progress.stuck.contains_key(&id) {
                continue;
            }
            let Some(history) = progress.deliveries.get(&id) else {
                continue;
            };
            let before: Vec<u64> = history
                .range(day - Duration::days(BASELINE_DAYS)..day)
                .map(|(_, n)| *n)
                .filter(|n| *n > 0)
                .collect();
            if let Some(expected) = delivery_gap(&before, seen) {
                tracing::warn!(
                    partition = format!("{}/{}", id.0, id.1),
                    "delivery gap: {}/{} delivered {seen} log object(s) in its {day} folder, where it usually delivers {expected}; has the trail stopped logging there, or its bucket policy changed?",
                    id.0,
                    id.1
                );
                self.summary.delivery_gaps.push(DeliveryGap {
                    account: id.0,
                    region: id.1,
                    day: day.to_string(),
                    expected,
                    seen,
                });
            }
        }
    }

    /// Whether this run listed day folders and found no log object in any of them (and every
    /// listing succeeded).
    pub(super) fn found_nothing(&self) -> Option<DayRange> {
        let searched = self.searched?;
        let nothing = self.found.values().all(|n| *n == 0)
            && self.failed_folders.is_empty()
            && self.summary.partitions_withheld.is_empty()
            && self.summary.objects_listed == 0;
        nothing.then_some(searched)
    }
}

/// A partition must have delivered on this many of the 7 days before a day to be judged.
const GAP_MIN_ACTIVE_DAYS: usize = 5;
/// Only a partition that usually delivers at least this many objects a day is judged: CloudTrail
/// writes a file about every 5 minutes while there is activity, so a region with a handful of
/// files a day is one that is quiet now and then, and a day without any is ordinary there.
const GAP_MIN_USUAL: u64 = 12;

/// The delivery-gap rule: `before` holds the object counts of the days before that delivered
/// any; returns the usual count (their median) when `seen` is a gap.
fn delivery_gap(before: &[u64], seen: u64) -> Option<u64> {
    if before.len() < GAP_MIN_ACTIVE_DAYS {
        return None;
    }
    let mut sorted = before.to_vec();
    sorted.sort_unstable();
    let usual = sorted[sorted.len() / 2];
    let quiet = usual >= GAP_MIN_USUAL && seen * 10 < usual;
    quiet.then_some(usual)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_that_usually_delivers_and_goes_quiet_is_a_gap() {
        // (objects on the days before that delivered any, objects that day, gap's usual count)
        let cases: [(&[u64], u64, Option<u64>); 8] = [
            (&[288, 280, 290, 285, 288, 286, 287], 0, Some(287)),
            (&[288, 280, 290, 285, 288, 286, 287], 200, None),
            (&[288, 280, 290, 285], 0, None),
            (&[300, 280, 310, 290, 305], 20, Some(300)),
            (&[300, 280, 310, 290, 305], 40, None),
            (&[12, 14, 13, 12, 15], 0, Some(13)),
            (&[12, 14, 13, 12, 15], 2, None),
            (&[3, 4, 5, 4, 3, 4, 5], 0, None),
        ];
        for (before, seen, want) in cases {
            assert_eq!(delivery_gap(before, seen), want, "{before:?} then {seen}");
        }
    }
}
