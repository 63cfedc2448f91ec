//! When each record is delivered, and in which file.
//!
//! CloudTrail publishes a stream's log files "about every 5 minutes", at ticks that are fixed for
//! a stream (`phase + k x interval`), each file holding the records that *arrived* since the
//! previous tick. A record arrives 45 s to 4 min after its eventTime, and a few percent are 5 to
//! 15 minutes later still, so a file's records span more than one interval and are not in
//! eventTime order (they are shuffled when the file is written). Records from 23:5x land in the
//! next day's folder. A small fraction of records is delivered a second time, byte-identical,
//! 1 to 3 ticks later (CloudTrail's documented duplicates, same eventID).

use std::collections::BTreeMap;
use std::rc::Rc;

use rand::Rng;

use crate::clock::Minute;
use crate::rng::Rand;

/// Arrival delay of an ordinary record, in seconds after its eventTime.
const DELAY_SECS: std::ops::RangeInclusive<i64> = 45..=240;
/// Extra delay of a late record, in seconds.
const LATE_EXTRA_SECS: std::ops::RangeInclusive<i64> = 300..=900;

/// The delivery parameters of one stream.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// Minutes between deliveries.
    pub interval: i64,
    /// Deliveries happen at minutes m with m mod interval == phase.
    pub phase: i64,
    /// Fraction of records delayed by an extra 5-15 minutes.
    pub late_share: f64,
    /// Fraction of (eligible) records delivered twice.
    pub duplicate_rate: f64,
}

/// A serialised record, shared between its deliveries.
pub type Bytes = Rc<[u8]>;

/// The first delivery tick at or after `arrival_secs` (seconds since the epoch).
pub fn tick_at_or_after(arrival_secs: i64, interval: i64, phase: i64) -> Minute {
    let minute = arrival_secs.div_euclid(60) + i64::from(arrival_secs.rem_euclid(60) != 0);
    minute + (phase - minute).rem_euclid(interval)
}

/// Records waiting for their delivery tick.
#[derive(Debug)]
pub struct Outbox {
    schedule: Schedule,
    pending: BTreeMap<Minute, Vec<Bytes>>,
    pub duplicates: u64,
}

impl Outbox {
    pub fn new(schedule: Schedule) -> Outbox {
        Outbox {
            schedule,
            pending: BTreeMap::new(),
            duplicates: 0,
        }
    }

    /// Schedules the record of an event at `minute`:`second`; `may_duplicate` allows a second
    /// delivery.
    pub fn post(
        &mut self,
        rng: &mut Rand,
        minute: Minute,
        second: u32,
        record: Vec<u8>,
        may_duplicate: bool,
    ) {
        let s = self.schedule;
        let mut delay = rng.random_range(DELAY_SECS);
        if rng.random_bool(s.late_share) {
            delay += rng.random_range(LATE_EXTRA_SECS);
        }
        let tick = tick_at_or_after(minute * 60 + i64::from(second) + delay, s.interval, s.phase);
        let record: Bytes = record.into();
        if may_duplicate && rng.random_bool(s.duplicate_rate) {
            let again = tick + s.interval * rng.random_range(1..=3);
            self.pending
                .entry(again)
                .or_default()
                .push(Rc::clone(&record));
            self.duplicates += 1;
        }
        self.pending.entry(tick).or_default().push(record);
    }

    /// Takes every delivery whose tick is at or before `through`, in tick order. Call it after
    /// posting all events of minute `through`: later events can only arrive after it.
    pub fn due(&mut self, through: Minute) -> Vec<(Minute, Vec<Bytes>)> {
        let later = self.pending.split_off(&(through + 1));
        std::mem::replace(&mut self.pending, later)
            .into_iter()
            .collect()
    }

    /// Takes every remaining delivery.
    pub fn drain(&mut self) -> Vec<(Minute, Vec<Bytes>)> {
        std::mem::take(&mut self.pending).into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::derive;

    #[test]
    fn ticks_follow_interval_and_phase() {
        let cases = [
            // (arrival secs, interval, phase, tick)
            (0, 5, 0, 0),
            (1, 5, 0, 5),
            (300, 5, 0, 5),
            (301, 5, 2, 7),
            (59 * 60 + 30, 60, 7, 60 + 7),
            (7 * 60, 60, 7, 7),
        ];
        for (arrival, interval, phase, want) in cases {
            assert_eq!(
                tick_at_or_after(arrival, interval, phase),
                want,
                "{arrival} {interval} {phase}"
            );
        }
    }

    #[test]
    fn records_are_delivered_after_their_event_and_duplicates_later() {
        let schedule = Schedule {
            interval: 5,
            phase: 3,
            late_share: 0.1,
            duplicate_rate: 0.5,
        };
        let mut outbox = Outbox::new(schedule);
        let mut rng = derive(9, "outbox");
        for minute in 0..100 {
            outbox.post(&mut rng, minute, 30, minute.to_string().into_bytes(), true);
        }
        let mut seen = std::collections::BTreeMap::<String, Vec<Minute>>::new();
        for (tick, records) in outbox.drain() {
            assert_eq!(tick.rem_euclid(5), 3);
            for record in records {
                let event: Minute = std::str::from_utf8(&record).unwrap().parse().unwrap();
                assert!(tick > event, "record of minute {event} delivered at {tick}");
                assert!(
                    tick <= event + 5 + 20 + 15,
                    "record of minute {event} delivered at {tick}"
                );
                seen.entry(event.to_string()).or_default().push(tick);
            }
        }
        assert_eq!(seen.len(), 100);
        assert!(outbox.duplicates > 20);
        assert!(seen.values().any(|ticks| ticks.len() == 2));
    }
}
