//! Flag value helpers shared by every subcommand (pflag-compatible spellings).
use anyhow::{bail, Result};

/// Go's `strconv.ParseBool`.
pub fn parse_bool(s: &str) -> Result<bool> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => bail!("strconv.ParseBool: parsing {s:?}: invalid syntax"),
    }
}

/// clap value parser for pflag-style booleans.
pub fn bool_value(s: &str) -> Result<bool, String> {
    parse_bool(s).map_err(|e| e.to_string())
}
