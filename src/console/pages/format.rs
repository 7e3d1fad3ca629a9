//! Times and durations for people: UTC timestamps (a fleet spans time zones), ages, durations.

/// `2026-12-01 14:16:10 UTC` (seconds) from microseconds since 1970.
pub fn time(us: i64) -> String {
    let secs = us.div_euclid(1_000_000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// `14:16:10.123` for timelines within a day.
pub fn clock_ms(us: i64) -> String {
    let ms = us.div_euclid(1000);
    let secs = ms.div_euclid(1000);
    let rem = secs.rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}.{:03}", rem / 3600, rem % 3600 / 60, rem % 60, ms.rem_euclid(1000))
}

/// `2026-12-01T14:16:10Z`, for `<time datetime>` and JSON consumers.
pub fn iso(us: i64) -> String {
    let t = time(us);
    format!("{}T{}Z", &t[..10], &t[11..19])
}

/// `2026-12-01`.
pub fn date(us: i64) -> String {
    time(us)[..10].to_string()
}

/// How long ago: `12 s ago`, `5 min ago`, `3 h ago`, `4 days ago`.
pub fn ago(us: i64, now_us: i64) -> String {
    let s = (now_us - us) / 1_000_000;
    if s < 0 {
        return format!("in {}", duration_ms(-s * 1000));
    }
    match s {
        0..=59 => format!("{s} s ago"),
        60..=3599 => format!("{} min ago", s / 60),
        3600..=172_799 => format!("{} h ago", s / 3600),
        _ => format!("{} days ago", s / 86_400),
    }
}

/// `850 ms`, `12.3 s`, `4 min 05 s`, `2 h 10 min`, `3 d 4 h`.
pub fn duration_ms(ms: i64) -> String {
    let ms = ms.max(0);
    match ms {
        0..=999 => format!("{ms} ms"),
        1000..=59_999 => format!("{:.1} s", ms as f64 / 1000.0),
        60_000..=3_599_999 => format!("{} min {:02} s", ms / 60_000, ms % 60_000 / 1000),
        3_600_000..=86_399_999 => format!("{} h {:02} min", ms / 3_600_000, ms % 3_600_000 / 60_000),
        _ => format!("{} d {} h", ms / 86_400_000, ms % 86_400_000 / 3_600_000),
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_and_durations_read_well() {
        assert_eq!(time(1_767_225_600_123_456), "2026-01-01 00:00:00 UTC");
        assert_eq!(time(951_782_400 * 1_000_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(iso(1_767_225_600_123_456), "2026-01-01T00:00:00Z");
        assert_eq!(clock_ms(1_767_225_600_123_456), "00:00:00.123");
        assert_eq!(duration_ms(850), "850 ms");
        assert_eq!(duration_ms(12_340), "12.3 s");
        assert_eq!(duration_ms(245_000), "4 min 05 s");
        assert_eq!(duration_ms(7_800_000), "2 h 10 min");
        assert_eq!(ago(0, 90_000_000), "1 min ago");
    }
}
