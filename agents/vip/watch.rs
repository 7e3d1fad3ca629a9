//! What happens on the link after start has added the address and sent the first probe and the
//! first announcement: the rest of the announcements, more probes, and listening for another
//! owner (RFC 5227 §2.4, ongoing conflict detection), for a bounded window. It runs in a detached
//! process (arp_bg) or inline in start, and ends early when the address is no longer ours (a stop).

use std::io;
use std::time::{Duration, Instant};

use crate::net::claim::Claim;

/// Duplicate-address probes within `dad_timeout` (the first one sent by start itself).
pub const DAD_PROBES: u32 = 3;
/// While listening, how often to check that the address is still ours (a stop ends the watch).
const STILL_OURS_EVERY: Duration = Duration::from_millis(50);

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    Probe,
    Announce,
}

/// The sends after start's first ones, and the end of the window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// In time order.
    pub sends: Vec<(Instant, Frame)>,
    /// Listening for another owner (dad_check) until `end`; without it the plan ends with its
    /// last send.
    pub listen: bool,
    pub end: Instant,
}

/// The settings a plan is made from.
#[derive(Copy, Clone, Debug)]
pub struct Settings {
    pub dad_check: bool,
    pub dad_timeout: Duration,
    pub arp_count: u32,
    pub arp_interval: Duration,
}

impl Plan {
    /// From `t0`, when start sent its first probe and first announcement: probes
    /// `dad_timeout / (DAD_PROBES + 1)` apart until DAD_PROBES are out (as before any address is
    /// taken, RFC 5227 §2.1.1), the other announcements `arp_interval` apart, a probe with each of
    /// them (an owner that appears meanwhile answers it), and listening until the later of
    /// `dad_timeout` and one probe spacing after the last send.
    pub fn new(t0: Instant, s: Settings) -> Plan {
        let step = s.dad_timeout / (DAD_PROBES + 1);
        let mut sends = Vec::new();
        for k in 1..s.arp_count {
            let at = t0 + s.arp_interval * k;
            sends.push((at, Frame::Announce));
            if s.dad_check {
                sends.push((at, Frame::Probe));
            }
        }
        if s.dad_check {
            sends.extend((1..DAD_PROBES).map(|k| (t0 + step * k, Frame::Probe)));
        }
        sends.sort_by_key(|(at, what)| (*at, *what == Frame::Probe));
        let last = sends.last().map(|(at, _)| *at).unwrap_or(t0);
        let end = if s.dad_check { (t0 + s.dad_timeout).max(last + step) } else { last };
        Plan { sends, listen: s.dad_check, end }
    }

    /// The plan cut at `limit` (start's own deadline when it runs inline).
    pub fn until(mut self, limit: Instant) -> Plan {
        self.sends.retain(|(at, _)| *at <= limit);
        self.end = self.end.min(limit);
        self
    }

    pub fn is_empty(&self) -> bool {
        self.sends.is_empty() && !self.listen
    }

    /// How long the window lasts from `t0`.
    pub fn window(&self, t0: Instant) -> Duration {
        self.end.saturating_duration_since(t0)
    }
}

/// How a watch ended.
#[derive(Debug)]
pub enum Outcome {
    /// The window passed.
    Done,
    /// The address is no longer ours (stopped): nothing more is sent.
    Gone,
    /// Another host answered for the address.
    Conflict([u8; 6]),
    /// A send or the socket failed; the address stays (announcements are best effort).
    Failed(io::Error),
}

/// Carries out `plan` on `claim`. `still_ours` is asked before every send and, while listening,
/// every 50 ms.
pub fn run(claim: &Claim, plan: &Plan, mut still_ours: impl FnMut() -> bool) -> Outcome {
    let mut next = 0;
    let mut next_check = Instant::now() + STILL_OURS_EVERY;
    loop {
        let now = Instant::now();
        if let Some(&(at, what)) = plan.sends.get(next) {
            if at <= now {
                if !still_ours() {
                    return Outcome::Gone;
                }
                let sent = match what {
                    Frame::Probe => claim.probe(),
                    Frame::Announce => claim.announce(),
                };
                if let Err(e) = sent {
                    return Outcome::Failed(e);
                }
                next += 1;
                continue;
            }
        }
        if now >= plan.end && next >= plan.sends.len() {
            return Outcome::Done;
        }
        let mut wake = plan.end;
        if let Some(&(at, _)) = plan.sends.get(next) {
            wake = wake.min(at);
        }
        if plan.listen {
            match claim.other_owner(wake.min(next_check)) {
                Ok(Some(mac)) => return Outcome::Conflict(mac),
                Ok(None) => {}
                Err(e) => return Outcome::Failed(e),
            }
            if Instant::now() >= next_check {
                if !still_ours() {
                    return Outcome::Gone;
                }
                next_check = Instant::now() + STILL_OURS_EVERY;
            }
        } else {
            std::thread::sleep(wake.saturating_duration_since(Instant::now()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn settings(dad_check: bool, arp_count: u32) -> Settings {
        Settings { dad_check, dad_timeout: 300 * MS, arp_count, arp_interval: 200 * MS }
    }

    fn offsets(plan: &Plan, t0: Instant) -> Vec<(u128, Frame)> {
        plan.sends.iter().map(|(at, w)| ((*at - t0).as_millis(), *w)).collect()
    }

    #[test]
    fn defaults_probe_through_the_announcements() {
        let t0 = Instant::now();
        let plan = Plan::new(t0, settings(true, 5));
        use Frame::*;
        assert_eq!(
            offsets(&plan, t0),
            vec![
                (75, Probe),
                (150, Probe),
                (200, Announce),
                (200, Probe),
                (400, Announce),
                (400, Probe),
                (600, Announce),
                (600, Probe),
                (800, Announce),
                (800, Probe)
            ]
        );
        assert!(plan.listen);
        assert_eq!(plan.window(t0), 875 * MS, "one probe spacing after the last probe");
    }

    #[test]
    fn the_window_is_at_least_dad_timeout() {
        let t0 = Instant::now();
        for count in [0, 1] {
            let plan = Plan::new(t0, settings(true, count));
            assert_eq!(offsets(&plan, t0), vec![(75, Frame::Probe), (150, Frame::Probe)]);
            assert_eq!(plan.window(t0), 300 * MS);
        }
    }

    #[test]
    fn without_dad_check_only_announcements() {
        let t0 = Instant::now();
        let plan = Plan::new(t0, settings(false, 3));
        assert_eq!(offsets(&plan, t0), vec![(200, Frame::Announce), (400, Frame::Announce)]);
        assert!(!plan.listen);
        assert_eq!(plan.window(t0), 400 * MS);
        assert!(Plan::new(t0, settings(false, 1)).is_empty());
        assert!(Plan::new(t0, settings(false, 0)).is_empty());
    }

    #[test]
    fn cut_at_a_deadline() {
        let t0 = Instant::now();
        let plan = Plan::new(t0, settings(true, 5)).until(t0 + 450 * MS);
        assert_eq!(plan.sends.len(), 6);
        assert_eq!(plan.window(t0), 450 * MS);
    }
}
