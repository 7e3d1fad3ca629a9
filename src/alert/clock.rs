//! Wall-clock instants as the report carries them (seconds and microseconds since 1970 UTC).

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Stamp {
    pub epoch: i64,
    pub usec: u32,
}

pub fn now() -> Stamp {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    Stamp { epoch: d.as_secs() as i64, usec: d.subsec_micros() }
}

impl Stamp {
    /// `2026-12-01T14:03:29.123456Z`, for the alert file (Pacemaker's own timestamp has no date
    /// by default).
    pub fn iso(&self) -> String {
        let (days, rem) = (self.epoch.div_euclid(86_400), self.epoch.rem_euclid(86_400));
        let (y, m, d) = crate::ocf::log::civil_from_days(days);
        format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:06}Z", rem / 3600, rem % 3600 / 60, rem % 60, self.usec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_dates() {
        assert_eq!(Stamp { epoch: 0, usec: 5 }.iso(), "1970-01-01T00:00:00.000005Z");
        assert_eq!(Stamp { epoch: 1_767_225_600, usec: 123_456 }.iso(), "2026-01-01T00:00:00.123456Z");
    }
}
