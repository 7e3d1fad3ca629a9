//! The time budget of one action, derived from `OCF_RESKEY_CRM_meta_timeout`.
//!
//! Pacemaker SIGKILLs the agent's whole process group when the timeout expires, so an agent must
//! finish with an exact code before then. The budget keeps a reserve for reporting.

use std::time::{Duration, Instant};

/// Pacemaker's default operation timeout when none is configured.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Copy, Clone, Debug)]
pub struct Deadline {
    end: Instant,
}

impl Deadline {
    /// The budget for an action Pacemaker allows `timeout` for: the timeout less a reserve of a
    /// tenth, at least 100 ms and at most 2 s, to report the result.
    pub fn from_timeout(timeout: Duration) -> Self {
        Self::after(timeout.saturating_sub(reserve_for(timeout)))
    }

    pub fn after(budget: Duration) -> Self {
        Deadline { end: Instant::now() + budget }
    }

    pub fn remaining(&self) -> Duration {
        self.end.saturating_duration_since(Instant::now())
    }

    pub fn expired(&self) -> bool {
        self.remaining().is_zero()
    }

    /// A deadline no later than this one and at most `limit` from now (one step of an action).
    pub fn at_most(&self, limit: Duration) -> Deadline {
        Deadline { end: self.end.min(Instant::now() + limit) }
    }

    /// The deadline at `fraction` of the remaining time (e.g. 0.5 for the graceful half of a stop).
    pub fn fraction(&self, fraction: f64) -> Deadline {
        Deadline::after(self.remaining().mul_f64(fraction.clamp(0.0, 1.0)))
    }

    /// Polls `ready` until it returns Some or the deadline passes; waits `step` between polls.
    /// The caller's condition decides; this never sleeps past the deadline.
    pub fn poll<T>(&self, step: Duration, mut ready: impl FnMut() -> Option<T>) -> Option<T> {
        loop {
            if let Some(v) = ready() {
                return Some(v);
            }
            let left = self.remaining();
            if left.is_zero() {
                return None;
            }
            std::thread::sleep(step.min(left));
        }
    }
}

fn reserve_for(timeout: Duration) -> Duration {
    (timeout / 10).clamp(Duration::from_millis(100), Duration::from_secs(2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_is_a_tenth_within_bounds() {
        assert_eq!(reserve_for(Duration::from_secs(20)), Duration::from_secs(2));
        assert_eq!(reserve_for(Duration::from_secs(60)), Duration::from_secs(2));
        assert_eq!(reserve_for(Duration::from_secs(5)), Duration::from_millis(500));
        assert_eq!(reserve_for(Duration::from_millis(500)), Duration::from_millis(100));
    }

    #[test]
    fn poll_stops_at_the_deadline() {
        let d = Deadline::after(Duration::from_millis(30));
        let start = Instant::now();
        let r: Option<()> = d.poll(Duration::from_millis(5), || None);
        assert!(r.is_none());
        assert!(start.elapsed() >= Duration::from_millis(30));
        assert!(start.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn at_most_never_extends() {
        let d = Deadline::after(Duration::from_millis(50));
        assert!(d.at_most(Duration::from_secs(10)).remaining() <= Duration::from_millis(50));
        assert!(d.at_most(Duration::from_millis(10)).remaining() <= Duration::from_millis(10));
    }
}
