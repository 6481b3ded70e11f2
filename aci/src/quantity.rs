//! Kubernetes-style resource quantities, as used by the appc `resource/*` isolators:
//! `750m`, `0.5`, `2`, `128M`, `1Gi`, `500Ki`, `1e3`.
//!
//! Values are kept exactly as a count of nano-units (the finest precision the Kubernetes type
//! keeps; finer fractions round away from zero, as there). Quantities beyond ±1.7·10²⁹ are
//! refused rather than approximated.
use std::fmt;
use std::str::FromStr;

use crate::ValidationError;

const NANO: i128 = 1_000_000_000;

/// The notation a quantity was written in; it decides how it is printed back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `12M` (powers of 1000, also `m`, `u`, `n`).
    DecimalSi,
    /// `12Mi` (powers of 1024).
    BinarySi,
    /// `12e6`.
    DecimalExponent,
}

/// An exact resource quantity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity {
    nanos: i128,
    format: Format,
}

fn bad(s: &str, reason: &str) -> ValidationError {
    ValidationError::invalid("quantity", s, reason)
}

/// Splits `s` like the Kubernetes parser: sign, integer digits, fraction digits, suffix.
fn split(s: &str) -> Result<(bool, &str, &str, &str), ValidationError> {
    let format_err = || {
        bad(
            s,
            "must be a number with an optional suffix (m, k, M, G, T, P, E, Ki, Mi, Gi, Ti, Pi, Ei or e<exponent>)",
        )
    };
    let (negative, rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let int_end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let (int, rest) = rest.split_at(int_end);
    let (frac, suffix) = match rest.strip_prefix('.') {
        Some(after) => {
            let end = after
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(after.len());
            after.split_at(end)
        }
        None => ("", rest),
    };
    if int.is_empty() && frac.is_empty() {
        return Err(format_err());
    }
    // Suffix grammar: letters from the suffix alphabet, then an optional signed exponent.
    let letters_end = suffix
        .find(|c: char| !"eEinumkKMGTP".contains(c))
        .unwrap_or(suffix.len());
    let tail = &suffix[letters_end..];
    let tail = tail.strip_prefix(['+', '-']).unwrap_or(tail);
    if !tail.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format_err());
    }
    Ok((negative, int, frac, suffix))
}

/// Base-10 exponent or base-2 exponent of a suffix, and the notation it implies.
fn interpret(suffix: &str) -> Option<(i32, u32, Format)> {
    let dec = |e| Some((e, 0, Format::DecimalSi));
    let bin = |e| Some((0, e, Format::BinarySi));
    match suffix {
        "" => dec(0),
        "n" => dec(-9),
        "u" => dec(-6),
        "m" => dec(-3),
        "k" => dec(3),
        "M" => dec(6),
        "G" => dec(9),
        "T" => dec(12),
        "P" => dec(15),
        "E" => dec(18),
        "Ki" => bin(10),
        "Mi" => bin(20),
        "Gi" => bin(30),
        "Ti" => bin(40),
        "Pi" => bin(50),
        "Ei" => bin(60),
        _ => {
            let exp = suffix.strip_prefix(['e', 'E'])?;
            let exp = exp.strip_prefix('+').unwrap_or(exp);
            let e: i32 = exp.parse().ok()?;
            Some((e, 0, Format::DecimalExponent))
        }
    }
}

fn pow10(e: u32) -> Option<u128> {
    10u128.checked_pow(e)
}

/// `a / b` rounded away from zero (both non-negative).
fn div_up(a: u128, b: u128) -> u128 {
    a / b + u128::from(!a.is_multiple_of(b))
}

impl Quantity {
    /// Parses a quantity; errors name the value.
    pub fn parse(s: &str) -> Result<Quantity, ValidationError> {
        let s_trim = s.trim();
        if s_trim.is_empty() {
            return Err(bad(s, "empty quantity"));
        }
        let (negative, int, frac, suffix) = split(s_trim)?;
        let (exp10, exp2, mut format) =
            interpret(suffix).ok_or_else(|| bad(s, "unknown suffix"))?;
        let digits = format!("{int}{frac}");
        let digits = digits.trim_start_matches('0');
        let mantissa: u128 = if digits.is_empty() {
            0
        } else {
            digits
                .parse()
                .map_err(|_| bad(s, "too many significant digits"))?
        };
        let too_large = || bad(s, "quantity too large");
        let scaled = mantissa.checked_shl(exp2).filter(|v| v >> exp2 == mantissa);
        let scaled = scaled.ok_or_else(too_large)?;
        // Exponent of ten relative to nano-units.
        let shift = i64::from(exp10) - frac.len() as i64 + 9;
        let abs = if shift >= 0 {
            let factor = u32::try_from(shift).ok().and_then(pow10);
            match factor {
                _ if scaled == 0 => 0,
                Some(f) => scaled.checked_mul(f).ok_or_else(too_large)?,
                None => return Err(too_large()),
            }
        } else {
            match u32::try_from(-shift).ok().and_then(pow10) {
                Some(f) => div_up(scaled, f),
                // Any non-zero value smaller than one nano-unit rounds up to one.
                None => u128::from(scaled != 0),
            }
        };
        let abs = i128::try_from(abs).map_err(|_| too_large())?;
        if format == Format::BinarySi && abs < NANO {
            format = Format::DecimalSi;
        }
        Ok(Quantity {
            nanos: if negative { -abs } else { abs },
            format,
        })
    }

    fn scaled(&self, unit: i128) -> i64 {
        let abs = self.nanos.unsigned_abs();
        let v = div_up(abs, unit as u128);
        let v = i64::try_from(v).unwrap_or(i64::MAX);
        if self.nanos < 0 {
            -v
        } else {
            v
        }
    }

    /// The value in thousandths, rounded away from zero (`750m` → 750, `1` → 1000).
    pub fn milli_value(&self) -> i64 {
        self.scaled(1_000_000)
    }

    /// The value in units, rounded away from zero (`1Ki` → 1024, `0.1` → 1).
    pub fn value(&self) -> i64 {
        self.scaled(NANO)
    }

    pub fn format(&self) -> Format {
        self.format
    }

    pub fn is_zero(&self) -> bool {
        self.nanos == 0
    }
}

impl FromStr for Quantity {
    type Err = ValidationError;

    fn from_str(s: &str) -> Result<Quantity, ValidationError> {
        Quantity::parse(s)
    }
}

/// Canonical form, as the Kubernetes type serialises it: `0.5` → `500m`, `1000` → `1k`,
/// `1.5Gi` → `1536Mi`, `1e3` → `1e3`.
impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.nanos == 0 {
            return f.write_str("0");
        }
        let sign = if self.nanos < 0 { "-" } else { "" };
        let abs = self.nanos.unsigned_abs();
        let whole_units = abs.is_multiple_of(NANO as u128);
        if self.format == Format::BinarySi && abs >= 1024 * NANO as u128 && whole_units {
            let mut amount = abs / NANO as u128;
            let mut power = 0usize;
            while amount.is_multiple_of(1024) && power < 6 {
                amount /= 1024;
                power += 1;
            }
            let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][power];
            return write!(f, "{sign}{amount}{suffix}");
        }
        let mut amount = abs;
        let mut exp: i32 = -9;
        while amount.is_multiple_of(10) {
            amount /= 10;
            exp += 1;
        }
        match exp.rem_euclid(3) {
            1 => {
                amount *= 10;
                exp -= 1;
            }
            2 => {
                amount *= 100;
                exp -= 2;
            }
            _ => {}
        }
        if self.format == Format::DecimalExponent {
            return match exp {
                0 => write!(f, "{sign}{amount}"),
                e => write!(f, "{sign}{amount}e{e}"),
            };
        }
        while exp > 18 {
            amount *= 1000;
            exp -= 3;
        }
        let suffix = match exp {
            -9 => "n",
            -6 => "u",
            -3 => "m",
            3 => "k",
            6 => "M",
            9 => "G",
            12 => "T",
            15 => "P",
            18 => "E",
            _ => "",
        };
        write!(f, "{sign}{amount}{suffix}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        Quantity::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn values() {
        let cases: &[(&str, i64, i64)] = &[
            ("750m", 750, 1),
            ("0.5", 500, 1),
            ("2", 2000, 2),
            ("128M", 128_000_000_000, 128_000_000),
            ("1Gi", 1_073_741_824_000, 1_073_741_824),
            ("500Ki", 512_000_000, 512_000),
            ("1e3", 1_000_000, 1000),
            ("1E3", 1_000_000, 1000),
            ("1e-3", 1, 1),
            ("0", 0, 0),
            ("-1", -1000, -1),
            ("+5", 5000, 5),
            (".5", 500, 1),
            ("5.", 5000, 5),
            ("1.5Gi", 1_610_612_736_000, 1_610_612_736),
            ("0.1m", 1, 1),
            ("1n", 1, 1),
            ("1u", 1, 1),
            ("1k", 1_000_000, 1000),
            ("1E", i64::MAX, 1_000_000_000_000_000_000),
            ("1Ei", i64::MAX, 1 << 60),
            ("0000.25", 250, 1),
            ("1e-400", 1, 1),
            (" 3 ", 3000, 3),
        ];
        for &(s, milli, value) in cases {
            let quantity = q(s);
            assert_eq!(quantity.milli_value(), milli, "milli {s}");
            assert_eq!(quantity.value(), value, "value {s}");
        }
    }

    #[test]
    fn rejections() {
        for s in [
            "", "abc", "1K", "1e", "1ee3", "1m5", "1.2.3", "--1", "1 Gi", "M", "1Mb", "1e400",
            "0x10",
        ] {
            let err = Quantity::parse(s).expect_err(s);
            assert!(err.to_string().contains("quantity"), "{err}");
        }
    }

    #[test]
    fn canonical_form() {
        for (input, canonical) in [
            ("500m", "500m"),
            ("0.5", "500m"),
            ("128M", "128M"),
            ("1Gi", "1Gi"),
            ("1e3", "1e3"),
            ("1000", "1k"),
            ("1024Ki", "1Mi"),
            ("1.5Gi", "1536Mi"),
            ("500", "500"),
            ("0", "0"),
            ("-2k", "-2k"),
            ("100Ki", "100Ki"),
            ("0.5Ki", "512"),
            ("1.5", "1500m"),
            ("12e6", "12e6"),
            ("1e-2", "10e-3"),
        ] {
            assert_eq!(q(input).to_string(), canonical, "{input}");
        }
    }
}
