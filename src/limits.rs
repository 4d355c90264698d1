//! The two limits the server enforces for keys and for accounts: requests per minute (a GCRA
//! limiter from `governor`) and requests in flight (a counter whose slot is released when its
//! guard is dropped, so a slot is held for as long as the caller keeps the guard, e.g. until a
//! long stream ends).

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use governor::clock::Clock;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

/// Requests per minute: up to `per_minute` at once, then one more every `60 s / per_minute`
/// (GCRA, so a burst is allowed but the long-run rate never exceeds the limit).
pub struct Rpm {
    per_minute: u32,
    limiter: DefaultDirectRateLimiter,
}

impl Rpm {
    /// `None` for 0 (no limit).
    pub fn new(per_minute: u32) -> Option<Rpm> {
        let n = NonZeroU32::new(per_minute)?;
        Some(Rpm {
            per_minute,
            limiter: RateLimiter::direct(Quota::per_minute(n)),
        })
    }

    pub fn per_minute(&self) -> u32 {
        self.per_minute
    }

    /// Takes one request from the allowance, or says how long until one is available.
    pub fn check(&self) -> Result<(), Duration> {
        self.limiter
            .check()
            .map_err(|not_until| not_until.wait_time_from(self.limiter.clock().now()))
    }
}

impl std::fmt::Debug for Rpm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Rpm({})", self.per_minute)
    }
}

/// Seconds for a `retry-after` header: rounded up, at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

/// Requests in flight, with an optional cap.
///
/// Written by hand rather than with `tokio::sync::Semaphore`: a semaphore has to be replaced when
/// the cap changes (the CLI can change it while requests are in flight) and cannot say how many
/// requests are in flight when there is no cap, which the pool needs for `least-used` and for
/// its "why no account" message. A compare-and-swap counter does both.
#[derive(Debug, Default)]
pub struct Slots {
    in_flight: Arc<AtomicU32>,
}

/// One request in flight; the slot is free again when this is dropped.
#[derive(Debug)]
pub struct SlotGuard {
    in_flight: Arc<AtomicU32>,
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Slots {
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Whether one more request fits under `cap` right now (`None`: no cap).
    pub fn has_room(&self, cap: Option<u32>) -> bool {
        cap.is_none_or(|cap| self.in_flight() < cap)
    }

    /// A slot if one is free under `cap` (`None`: no cap, always a slot).
    pub fn try_take(&self, cap: Option<u32>) -> Option<SlotGuard> {
        self.in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| match cap {
                Some(cap) if n >= cap => None,
                _ => Some(n + 1),
            })
            .ok()?;
        Some(SlotGuard {
            in_flight: self.in_flight.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpm_allows_the_burst_then_says_how_long_to_wait() {
        assert!(Rpm::new(0).is_none());
        let rpm = Rpm::new(2).unwrap();
        assert_eq!(rpm.check(), Ok(()));
        assert_eq!(rpm.check(), Ok(()));
        let wait = rpm.check().unwrap_err();
        // One request every 30 s.
        assert!(wait <= Duration::from_secs(30) && wait > Duration::from_secs(29));
        assert_eq!(retry_after_secs(wait), 30);
    }

    #[test]
    fn retry_after_rounds_up_to_at_least_one_second() {
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1001)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(7)), 7);
    }

    #[test]
    fn slots_are_held_until_the_guard_is_dropped() {
        let slots = Slots::default();
        let a = slots.try_take(Some(2)).unwrap();
        let b = slots.try_take(Some(2)).unwrap();
        assert!(slots.try_take(Some(2)).is_none());
        assert!(!slots.has_room(Some(2)));
        assert_eq!(slots.in_flight(), 2);
        drop(a);
        assert!(slots.has_room(Some(2)));
        let c = slots.try_take(Some(2)).unwrap();
        // Without a cap there is always room, and it is still counted.
        let d = slots.try_take(None).unwrap();
        assert_eq!(slots.in_flight(), 3);
        drop((b, c, d));
        assert_eq!(slots.in_flight(), 0);
    }
}
