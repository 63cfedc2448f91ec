//! The bytes an S3 read may hold at once: compressed objects fetched (or being fetched) and not
//! yet decoded. Raising the fetch concurrency hides S3's per-request latency (tens of
//! milliseconds a GET, and CloudTrail writes many small objects), but concurrency alone does
//! not bound memory: 64 objects in flight are 64 × 5 KiB from one trail and 64 × 50 MiB from
//! another. The budget does: a reader reserves an object's listed size before its GetObject
//! and gives it back once the object is decoded (`--max-bytes-in-flight`).
//!
//! Reservations are counted in KiB (a semaphore's permits), each rounded up. An object larger
//! than the whole budget reserves the whole budget: it waits until nothing else is held, is
//! then fetched and decoded alone, and never waits forever. Waiters are served in the order
//! they asked, so a large object is not starved by the small ones after it.

use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Compressed bytes fetched and not yet decoded, at most, by default.
pub const DEFAULT_MAX_BYTES_IN_FLIGHT: u64 = 64 << 20;
/// The unit of a reservation.
const UNIT_BYTES: u64 = 1024;

/// A shared budget of bytes in flight (clones share it).
#[derive(Debug, Clone)]
pub struct FetchBudget {
    permits: Arc<Semaphore>,
    /// The whole budget, in units.
    units: u32,
}

/// Bytes reserved from a `FetchBudget`, given back when dropped.
#[derive(Debug)]
#[must_use = "the reservation is given back as soon as it is dropped"]
pub struct Reserved {
    _permit: Option<OwnedSemaphorePermit>,
}

impl FetchBudget {
    /// A budget of `bytes` (at least one unit, and at most what a semaphore can count).
    pub fn new(bytes: u64) -> FetchBudget {
        let most = u32::try_from(Semaphore::MAX_PERMITS).unwrap_or(u32::MAX);
        let units = units(bytes).clamp(1, most);
        FetchBudget {
            permits: Arc::new(Semaphore::new(units as usize)),
            units,
        }
    }

    /// The whole budget, in bytes (rounded up to the unit).
    pub fn bytes(&self) -> u64 {
        u64::from(self.units) * UNIT_BYTES
    }

    /// Wait until `size` more bytes fit, and hold them until the result is dropped. An object
    /// larger than the whole budget reserves all of it.
    pub async fn reserve(&self, size: u64) -> Reserved {
        let wanted = units(size).min(self.units);
        // The semaphore is never closed, so this only fails if that changes; going on without
        // a reservation is then the safe way (the bound is lost, the run is not).
        let permit = self.permits.clone().acquire_many_owned(wanted).await.ok();
        Reserved { _permit: permit }
    }

    /// The bytes not reserved right now (for tests and diagnostics).
    pub fn available(&self) -> u64 {
        self.permits.available_permits() as u64 * UNIT_BYTES
    }
}

/// `bytes` in units, rounded up.
fn units(bytes: u64) -> u32 {
    u32::try_from(bytes.div_ceil(UNIT_BYTES)).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn sizes_round_up_to_whole_kib() {
        // (bytes, units)
        let cases = [
            (0, 0),
            (1, 1),
            (1024, 1),
            (1025, 2),
            (64 << 20, 65536),
            (u64::MAX, u32::MAX),
        ];
        for (bytes, want) in cases {
            assert_eq!(units(bytes), want, "{bytes} bytes");
        }
        assert_eq!(FetchBudget::new(0).bytes(), 1024, "at least one unit");
        assert_eq!(FetchBudget::new(3000).bytes(), 3072);
    }

    /// A reservation made on another task, to watch it wait.
    fn reserve_later(budget: &FetchBudget, bytes: u64) -> tokio::task::JoinHandle<Reserved> {
        let budget = budget.clone();
        tokio::spawn(async move { budget.reserve(bytes).await })
    }

    /// The reservation `waiting` made, which must be granted within seconds.
    async fn granted(waiting: tokio::task::JoinHandle<Reserved>, why: &str) -> Reserved {
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect(why)
            .unwrap()
    }

    /// Give waiting reservations a chance to be served.
    async fn settle() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    #[tokio::test]
    async fn reservations_wait_until_their_bytes_fit_and_come_back_when_dropped() {
        let budget = FetchBudget::new(10 << 10);
        let a = budget.reserve(6 << 10).await;
        let b = budget.reserve(4 << 10).await;
        assert_eq!(budget.available(), 0);
        let waiting = reserve_later(&budget, 5 << 10);
        settle().await;
        assert!(
            !waiting.is_finished(),
            "5 KiB do not fit while 10 KiB are held"
        );
        drop(b);
        settle().await;
        assert!(
            !waiting.is_finished(),
            "4 KiB free are not enough for 5 KiB"
        );
        drop(a);
        let c = granted(waiting, "5 KiB fit once everything is back").await;
        assert_eq!(budget.available(), 5 << 10);
        drop(c);
        assert_eq!(budget.available(), 10 << 10);
    }

    #[tokio::test]
    async fn an_object_larger_than_the_budget_takes_all_of_it_and_never_waits_forever() {
        let budget = FetchBudget::new(8 << 10);
        let small = budget.reserve(1 << 10).await;
        let huge = reserve_later(&budget, 1 << 30);
        settle().await;
        assert!(
            !huge.is_finished(),
            "the huge object waits for the whole budget"
        );
        // A later small object queues behind it (first come, first served).
        let later = reserve_later(&budget, 1 << 10);
        settle().await;
        assert!(
            !later.is_finished(),
            "no overtaking the waiting huge object"
        );
        drop(small);
        let huge = granted(huge, "the huge object gets the whole budget").await;
        assert_eq!(budget.available(), 0);
        assert!(!later.is_finished());
        drop(huge);
        let later = granted(later, "the small object follows").await;
        drop(later);
        assert_eq!(budget.available(), budget.bytes());
    }
}
