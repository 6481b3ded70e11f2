//! `--insecure-options`: a comma list of security checks to skip (docs/cli.md, "--insecure-options").
use std::fmt;

use anyhow::{bail, Result};

const IMAGE: u32 = 1 << 0;
const TLS: u32 = 1 << 1;
const ONDISK: u32 = 1 << 2;
const HTTP: u32 = 1 << 3;
const PUBKEY: u32 = 1 << 4;
const CAPABILITIES: u32 = 1 << 5;
const PATHS: u32 = 1 << 6;
const SECCOMP: u32 = 1 << 7;
const ALL_FETCH: u32 = IMAGE | TLS | HTTP | PUBKEY;
const ALL_RUN: u32 = CAPABILITIES | PATHS | SECCOMP;

/// Accepted values, in rkt's order.
const OPTIONS: [(&str, u32); 12] = [
    ("none", 0),
    ("image", IMAGE),
    ("tls", TLS),
    ("ondisk", ONDISK),
    ("http", HTTP),
    ("pubkey", PUBKEY),
    ("capabilities", CAPABILITIES),
    ("paths", PATHS),
    ("seccomp", SECCOMP),
    ("all-fetch", ALL_FETCH),
    ("all-run", ALL_RUN),
    ("all", ALL_FETCH | ALL_RUN | ONDISK),
];

/// The set of skipped checks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Insecure(u32);

impl Insecure {
    /// Parses one flag value; a repeated flag replaces the earlier one (the caller keeps the last).
    pub fn parse(value: &str) -> Result<Insecure> {
        let mut bits = 0;
        let mut seen: Vec<String> = Vec::new();
        // An empty value means no options, as in rkt.
        for raw in value.split(',').filter(|v| !v.is_empty()) {
            let opt = raw.trim().to_ascii_lowercase();
            if seen.contains(&opt) {
                bail!("duplicated option {opt:?}");
            }
            let Some((_, b)) = OPTIONS.iter().find(|(name, _)| *name == opt) else {
                bail!("unknown option {opt:?}");
            };
            bits |= b;
            seen.push(opt);
        }
        Ok(Insecure(bits))
    }

    /// Accept any TLS certificate.
    pub fn skip_tls(self) -> bool {
        self.0 & TLS != 0
    }
    /// Allow plain HTTP.
    pub fn allow_http(self) -> bool {
        self.0 & HTTP != 0
    }
    /// Keys fetched automatically may come over insecure connections.
    pub fn skip_pubkey(self) -> bool {
        self.0 & PUBKEY != 0
    }
    pub fn skip_image(self) -> bool {
        self.0 & IMAGE != 0
    }
    /// Skip verifying blobs and trees read back from the store.
    pub fn skip_ondisk(self) -> bool {
        self.0 & ONDISK != 0
    }
    pub fn skip_capabilities(self) -> bool {
        self.0 & CAPABILITIES != 0
    }
    pub fn skip_paths(self) -> bool {
        self.0 & PATHS != 0
    }
    pub fn skip_seccomp(self) -> bool {
        self.0 & SECCOMP != 0
    }
}

impl fmt::Display for Insecure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = OPTIONS[1..9]
            .iter()
            .filter(|(_, b)| self.0 & b != 0)
            .map(|(n, _)| *n)
            .collect();
        if names.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&names.join(","))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_groups() {
        let i = Insecure::parse("image,TLS").unwrap();
        assert!(i.skip_image() && !i.skip_paths());
        assert_eq!(i.to_string(), "image,tls");
        let all = Insecure::parse("all").unwrap();
        assert!(all.skip_image() && all.skip_seccomp() && all.skip_ondisk());
        let run = Insecure::parse("all-run").unwrap();
        assert!(run.skip_paths() && !run.skip_image());
        assert_eq!(Insecure::parse("none").unwrap(), Insecure::default());
    }

    #[test]
    fn unknown_and_duplicated_values_are_errors() {
        let e = Insecure::parse("image,bogus").unwrap_err().to_string();
        assert_eq!(e, "unknown option \"bogus\"");
        assert_eq!(
            Insecure::parse("image,image").unwrap_err().to_string(),
            "duplicated option \"image\""
        );
        assert_eq!(Insecure::parse("").unwrap(), Insecure::default());
    }
}
