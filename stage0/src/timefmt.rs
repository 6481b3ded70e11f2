//! Go-compatible time and duration handling: rkt prints times with Go's layout
//! `2006-01-02 15:04:05.999 -0700 MST` and parses durations like `30m`, `1h30m`, `0s`.
use std::time::Duration;

use anyhow::{bail, Result};

use crate::sys;

/// Formats nanoseconds since the epoch as Go's `2006-01-02 15:04:05.999 -0700 MST` in local time.
pub fn go_time(nanos: i64) -> String {
    let secs = nanos.div_euclid(1_000_000_000);
    let millis = (nanos.rem_euclid(1_000_000_000) / 1_000_000) as u32;
    let t = sys::local_time(secs);
    let mut frac = String::new();
    if millis != 0 {
        frac = format!(".{millis:03}");
        while frac.ends_with('0') {
            frac.pop();
        }
    }
    let sign = if t.offset < 0 { '-' } else { '+' };
    let off = t.offset.abs();
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}{frac} {sign}{:02}{:02} {}",
        t.year,
        t.month,
        t.day,
        t.hour,
        t.minute,
        t.second,
        off / 3600,
        (off % 3600) / 60,
        t.zone
    )
}

/// Now, in nanoseconds since the epoch.
pub fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// Parses a Go duration (`300ms`, `1.5h`, `2h45m`, `0`).
pub fn parse_duration(s: &str) -> Result<Duration> {
    let orig = s;
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    if rest.starts_with('-') {
        bail!("invalid duration {orig:?}: durations cannot be negative here");
    }
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        bail!("invalid duration {orig:?}");
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, after) = rest.split_at(num_len);
        if num.is_empty() || num == "." {
            bail!("invalid duration {orig:?}");
        }
        let value: f64 = num
            .parse()
            .map_err(|_| anyhow::anyhow!("invalid duration {orig:?}"))?;
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => bail!("missing unit in duration {orig:?}"),
            _ => bail!("unknown unit {unit:?} in duration {orig:?}"),
        };
        total += value * scale;
        rest = next;
    }
    Ok(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_like_go() {
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("0s").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("30m").unwrap(), Duration::from_secs(1800));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("abc").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("5d").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn go_layout_trims_fraction() {
        std::env::set_var("TZ", "UTC");
        assert_eq!(go_time(0), "1970-01-01 00:00:00 +0000 UTC");
        assert_eq!(go_time(1_500_000_000), "1970-01-01 00:00:01.5 +0000 UTC");
        assert_eq!(go_time(1_020_000_000), "1970-01-01 00:00:01.02 +0000 UTC");
    }
}
