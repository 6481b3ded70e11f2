//! go-humanize's `IBytes` and `Time`, which `rkt list` and `rkt image list` print.

/// Sizes in powers of 1024 without a space: `5B`, `1.5KiB`, `12MiB`.
pub fn ibytes(n: u64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 10 {
        return format!("{n}B");
    }
    let e = ((n as f64).ln() / 1024f64.ln()).floor();
    let val = ((n as f64) / 1024f64.powf(e) * 10.0 + 0.5).floor() / 10.0;
    let unit = UNITS[e as usize];
    if val < 10.0 {
        format!("{val:.1}{unit}")
    } else {
        format!("{val:.0}{unit}")
    }
}

/// Relative time from `then` to `now` (both in seconds since the epoch): `now`,
/// `3 minutes ago`, `1 day ago`, `a long while ago`.
pub fn relative_time(then: i64, now: i64) -> String {
    const MINUTE: i64 = 60;
    const HOUR: i64 = 60 * MINUTE;
    const DAY: i64 = 24 * HOUR;
    const WEEK: i64 = 7 * DAY;
    const MONTH: i64 = 30 * DAY;
    const YEAR: i64 = 12 * MONTH;
    let (diff, label) = if then > now {
        (then - now, "from now")
    } else {
        (now - then, "ago")
    };
    let with = |n: i64, unit: &str| format!("{n} {unit} {label}");
    match diff {
        d if d < 1 => "now".to_string(),
        d if d < 2 => format!("1 second {label}"),
        d if d < MINUTE => with(d, "seconds"),
        d if d < 2 * MINUTE => format!("1 minute {label}"),
        d if d < HOUR => with(d / MINUTE, "minutes"),
        d if d < 2 * HOUR => format!("1 hour {label}"),
        d if d < DAY => with(d / HOUR, "hours"),
        d if d < 2 * DAY => format!("1 day {label}"),
        d if d < WEEK => with(d / DAY, "days"),
        d if d < 2 * WEEK => format!("1 week {label}"),
        d if d < MONTH => with(d / WEEK, "weeks"),
        d if d < 2 * MONTH => format!("1 month {label}"),
        d if d < YEAR => with(d / MONTH, "months"),
        d if d < 18 * MONTH => format!("1 year {label}"),
        d if d < 2 * YEAR => format!("2 years {label}"),
        d if d < 37 * YEAR => with(d / YEAR, "years"),
        _ => "a long while ago".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ibytes_matches_go_humanize() {
        assert_eq!(ibytes(0), "0B");
        assert_eq!(ibytes(5), "5B");
        assert_eq!(ibytes(512), "512B");
        assert_eq!(ibytes(1000), "1000B");
        assert_eq!(ibytes(1024), "1.0KiB");
        assert_eq!(ibytes(1536), "1.5KiB");
        assert_eq!(ibytes(10240), "10KiB");
        assert_eq!(ibytes(1048575), "1024KiB");
        assert_eq!(ibytes(3 * 1024 * 1024), "3.0MiB");
    }

    #[test]
    fn relative_times() {
        assert_eq!(relative_time(100, 100), "now");
        assert_eq!(relative_time(99, 100), "1 second ago");
        assert_eq!(relative_time(50, 100), "50 seconds ago");
        assert_eq!(relative_time(0, 150), "2 minutes ago");
        assert_eq!(relative_time(0, 3 * 3600), "3 hours ago");
        assert_eq!(relative_time(0, 86400 * 3), "3 days ago");
        assert_eq!(relative_time(0, 1_700_000_000), "a long while ago");
        assert_eq!(relative_time(110, 100), "10 seconds from now");
    }
}
