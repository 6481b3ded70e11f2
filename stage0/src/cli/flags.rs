//! Flag value helpers shared by every subcommand (pflag-compatible spellings).
use anyhow::{bail, Result};

/// Go's `strconv.ParseBool`, with its error text.
pub fn parse_bool(s: &str) -> Result<bool> {
    aci::go::parse_bool(s)
        .ok_or_else(|| anyhow::anyhow!("strconv.ParseBool: parsing {s:?}: invalid syntax"))
}

/// clap value parser for pflag-style booleans.
pub fn bool_value(s: &str) -> Result<bool, String> {
    parse_bool(s).map_err(|e| e.to_string())
}

/// `--image-size-limit`: bytes, or a number with `K`, `M`, `G` or `T` (also `Ki` .. `Ti`),
/// all binary multiples (KiB to TiB).
pub fn parse_size(s: &str) -> Result<u64> {
    let bad = || {
        anyhow::anyhow!("invalid size {s:?}: use a number of bytes, optionally followed by K, M, G or T (KiB to TiB)")
    };
    let digits_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, suffix) = s.split_at(digits_end);
    let number: u64 = digits.parse().map_err(|_| bad())?;
    // `Gi` means `G`; a lone `i` is no unit.
    let unit = suffix
        .strip_suffix(['i', 'I'])
        .filter(|u| !u.is_empty())
        .unwrap_or(suffix);
    let shift = match unit {
        "" => 0,
        "K" | "k" => 10,
        "M" | "m" => 20,
        "G" | "g" => 30,
        "T" | "t" => 40,
        _ => return Err(bad()),
    };
    let bytes = number.checked_mul(1 << shift).ok_or_else(bad)?;
    if bytes == 0 {
        bail!("invalid size {s:?}: must be more than 0");
    }
    Ok(bytes)
}

/// clap value parser for [`parse_size`].
pub fn size_value(s: &str) -> Result<u64, String> {
    parse_size(s).map_err(|e| e.to_string())
}

/// `--image-expansion-limit`: a whole number, at least 1.
pub fn parse_ratio(s: &str) -> Result<u64> {
    match s.parse::<u64>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => bail!("invalid ratio {s:?}: use a whole number of at least 1"),
    }
}

/// clap value parser for [`parse_ratio`].
pub fn ratio_value(s: &str) -> Result<u64, String> {
    parse_ratio(s).map_err(|e| e.to_string())
}

/// A size as [`parse_size`] reads it, in the largest unit that divides it.
pub fn format_size(bytes: u64) -> String {
    for (shift, unit) in [(40, "T"), (30, "G"), (20, "M"), (10, "K")] {
        if bytes >= 1 << shift && bytes.is_multiple_of(1 << shift) {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    bytes.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1234").unwrap(), 1234);
        assert_eq!(parse_size("4K").unwrap(), 4096);
        assert_eq!(parse_size("4Ki").unwrap(), 4096);
        assert_eq!(parse_size("3M").unwrap(), 3 << 20);
        assert_eq!(parse_size("16G").unwrap(), 16 << 30);
        assert_eq!(parse_size("16Gi").unwrap(), 16 << 30);
        assert_eq!(parse_size("2T").unwrap(), 2 << 40);
        assert_eq!(parse_size("2ti").unwrap(), 2 << 40);
        for bad in [
            "",
            "G",
            "1.5G",
            "16GB",
            "16Gib",
            "-1",
            "1X",
            "1iG",
            "99999999999T",
        ] {
            let e = parse_size(bad).unwrap_err().to_string();
            assert!(e.starts_with(&format!("invalid size {bad:?}: ")), "{e}");
        }
        assert_eq!(
            parse_size("0").unwrap_err().to_string(),
            "invalid size \"0\": must be more than 0"
        );
        assert_eq!(format_size(16 << 30), "16G");
        assert_eq!(format_size(3 << 20), "3M");
        assert_eq!(format_size(1000), "1000");
        assert_eq!(parse_size(&format_size(1536 << 20)).unwrap(), 1536 << 20);
    }

    #[test]
    fn ratios() {
        assert_eq!(parse_ratio("256").unwrap(), 256);
        assert_eq!(parse_ratio("1").unwrap(), 1);
        for bad in ["0", "", "1.5", "-3", "x"] {
            assert_eq!(
                parse_ratio(bad).unwrap_err().to_string(),
                format!("invalid ratio {bad:?}: use a whole number of at least 1")
            );
        }
    }
}
