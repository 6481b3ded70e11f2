//! appc grammars (spec "AC Identifier", "AC Name", environment names) and the os/arch table.
//!
//! The checks follow what the appc Go schema (0.8.11) actually enforces, which is slightly more
//! lenient than the regular expressions in the spec text: an AC Identifier or AC Name must be
//! non-empty, use only the allowed characters, and start and end with a lower-case letter or a
//! digit. Consecutive separators in the middle (`a--b`, `a./b`) are accepted, as by rkt.
use crate::ValidationError;

/// Operating systems and architectures listed by the appc spec (`os`/`arch` labels).
const SPEC_OS_ARCH: &[(&str, &[&str])] = &[
    (
        "linux",
        &[
            "amd64",
            "i386",
            "aarch64",
            "aarch64_be",
            "armv6l",
            "armv7l",
            "armv7b",
            "ppc64",
            "ppc64le",
            "s390x",
        ],
    ),
    ("freebsd", &["amd64", "i386", "arm"]),
    ("darwin", &["x86_64", "i386"]),
];

/// The stricter table rkt's stage0 applies before running an image.
const RKT_OS_ARCH: &[(&str, &[&str])] = &[(
    "linux",
    &[
        "amd64",
        "i386",
        "aarch64",
        "aarch64_be",
        "armv6l",
        "armv7l",
        "armv7b",
        "ppc64le",
    ],
)];

fn is_lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

fn check_grammar(s: &str, separators: &[u8]) -> bool {
    let bytes = s.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(&first), Some(&last)) => {
            is_lower_alnum(first)
                && is_lower_alnum(last)
                && bytes
                    .iter()
                    .all(|&b| is_lower_alnum(b) || separators.contains(&b))
        }
        _ => false,
    }
}

/// AC Identifier: image, label, annotation and isolator names (`[a-z0-9]` plus `-._~/`).
pub fn is_ac_identifier(s: &str) -> bool {
    check_grammar(s, b"-._~/")
}

/// AC Name: app, volume, port and mount-point names (`[a-z0-9]` plus `-`).
pub fn is_ac_name(s: &str) -> bool {
    check_grammar(s, b"-")
}

fn sanitize(s: &str, separators: &[u8], replacement: char) -> Option<String> {
    let lowered: String = s
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii() && (is_lower_alnum(c as u8) || separators.contains(&(c as u8))) {
                c
            } else {
                replacement
            }
        })
        .collect();
    let is_sep = |c: char| c.is_ascii() && separators.contains(&(c as u8));
    let trimmed = lowered.trim_matches(is_sep);
    (!trimmed.is_empty()).then(|| trimmed.to_string())
}

/// Lower-cases `s`, replaces characters not allowed in an AC Identifier with `_` and trims
/// leading and trailing separators. `None` when nothing valid remains.
pub fn sanitize_ac_identifier(s: &str) -> Option<String> {
    sanitize(s, b"-._~/", '_')
}

/// Lower-cases `s`, replaces characters not allowed in an AC Name with `-` and trims leading and
/// trailing dashes. `None` when nothing valid remains.
pub fn sanitize_ac_name(s: &str) -> Option<String> {
    sanitize(s, b"-", '-')
}

/// Environment variable names: `^[A-Za-z_][A-Za-z_0-9.-]*$`.
pub fn is_env_name(s: &str) -> bool {
    let bytes = s.as_bytes();
    match bytes.first() {
        Some(&first) if first.is_ascii_alphabetic() || first == b'_' => bytes[1..]
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')),
        _ => false,
    }
}

fn check_os_arch(
    table: &[(&str, &[&str])],
    os: &str,
    arch: Option<&str>,
) -> Result<(), ValidationError> {
    let Some((_, archs)) = table.iter().find(|(o, _)| *o == os) else {
        let mut oses: Vec<&str> = table.iter().map(|(o, _)| *o).collect();
        oses.sort_unstable();
        return Err(ValidationError::invalid(
            "os label",
            os,
            format!("must be one of: {}", oses.join(", ")),
        ));
    };
    match arch {
        Some(arch) if !archs.contains(&arch) => Err(ValidationError::invalid(
            "arch label",
            arch,
            format!("for os {os} must be one of: {}", archs.join(", ")),
        )),
        _ => Ok(()),
    }
}

/// Checks an `os`/`arch` label pair against the appc spec table.
pub fn validate_os_arch(os: &str, arch: &str) -> Result<(), ValidationError> {
    check_os_arch(SPEC_OS_ARCH, os, Some(arch))
}

/// Like the Go schema: an `arch` is only checked when an `os` is given.
pub(crate) fn validate_os_arch_labels(
    os: Option<&str>,
    arch: Option<&str>,
) -> Result<(), ValidationError> {
    match os {
        Some(os) => check_os_arch(SPEC_OS_ARCH, os, arch),
        None => Ok(()),
    }
}

/// Whether rkt runs images for this pair (linux only, and not every spec architecture).
pub fn rkt_supports_os_arch(os: &str, arch: &str) -> bool {
    check_os_arch(RKT_OS_ARCH, os, Some(arch)).is_ok()
}

/// appc acVersion: semantic version `MAJOR.MINOR.PATCH[-PRE][+META]`, not all zero.
pub(crate) fn validate_semver(field: &str, s: &str) -> Result<(), ValidationError> {
    if s.is_empty() {
        return Err(ValidationError::missing(field));
    }
    let core = s.split_once('+').map_or(s, |(core, _)| core);
    let (core, pre) = core.split_once('-').map_or((core, ""), |(c, p)| (c, p));
    let parts: Vec<&str> = core.splitn(3, '.').collect();
    let numbers: Option<Vec<i64>> = if parts.len() == 3 {
        parts.iter().map(|p| p.parse::<i64>().ok()).collect()
    } else {
        None
    };
    match numbers {
        None => Err(ValidationError::invalid(
            field,
            s,
            "must be a semantic version such as 0.8.11",
        )),
        Some(n) if n.iter().all(|&x| x == 0) && pre.is_empty() && !s.contains('+') => Err(
            ValidationError::invalid(field, s, "semantic version cannot be zero"),
        ),
        Some(_) => Ok(()),
    }
}

/// appc hash strings: `sha512-<hex>` (the only supported type).
pub(crate) fn validate_hash(field: &str, s: &str) -> Result<(), ValidationError> {
    let mut parts = s.split('-');
    let (typ, val) = match (parts.next(), parts.next(), parts.next()) {
        (Some(t), Some(v), None) => (t, v),
        _ => {
            return Err(ValidationError::invalid(
                field,
                s,
                "must be a hash such as sha512-<hex>",
            ))
        }
    };
    if typ != "sha512" {
        return Err(ValidationError::invalid(
            field,
            s,
            "unsupported hash type (only sha512)",
        ));
    }
    if val.is_empty() {
        return Err(ValidationError::invalid(field, s, "empty hash value"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ac_identifier() {
        for ok in [
            "example.com/app",
            "a",
            "0",
            "coreos.com/etcd",
            "a-b_c~d/e.f",
            "a--b",
        ] {
            assert!(is_ac_identifier(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "A", "a b", "/a", "a/", "é", "a:b"] {
            assert!(!is_ac_identifier(bad), "{bad}");
        }
    }

    #[test]
    fn ac_name() {
        for ok in ["app", "my-app-2", "0"] {
            assert!(is_ac_name(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "a.b", "a_b", "App", "a/b"] {
            assert!(!is_ac_name(bad), "{bad}");
        }
    }

    #[test]
    fn sanitizers() {
        assert_eq!(
            sanitize_ac_identifier("Docker.IO/Library:Busybox").as_deref(),
            Some("docker.io/library_busybox")
        );
        assert_eq!(sanitize_ac_identifier("--").as_deref(), None);
        assert_eq!(sanitize_ac_identifier("_x_").as_deref(), Some("x"));
        assert_eq!(
            sanitize_ac_name("Volume /var/lib").as_deref(),
            Some("volume--var-lib")
        );
        assert_eq!(sanitize_ac_name("/data/").as_deref(), Some("data"));
        assert_eq!(sanitize_ac_name("***").as_deref(), None);
        assert_eq!(sanitize_ac_name("naïve").as_deref(), Some("na-ve"));
    }

    #[test]
    fn env_names() {
        for ok in ["PATH", "_x", "a.b-c", "A1"] {
            assert!(is_env_name(ok), "{ok}");
        }
        for bad in ["", "1A", "A=B", "-a", "a b"] {
            assert!(!is_env_name(bad), "{bad}");
        }
    }

    #[test]
    fn os_arch() {
        assert!(validate_os_arch("linux", "amd64").is_ok());
        assert!(validate_os_arch("linux", "s390x").is_ok());
        assert!(validate_os_arch("darwin", "x86_64").is_ok());
        let err = validate_os_arch("linux", "x86_64").unwrap_err().to_string();
        assert!(err.contains("\"x86_64\"") && err.contains("arch"), "{err}");
        let err = validate_os_arch("plan9", "amd64").unwrap_err().to_string();
        assert!(
            err.contains("\"plan9\"") && err.contains("darwin, freebsd, linux"),
            "{err}"
        );
        assert!(rkt_supports_os_arch("linux", "aarch64"));
        assert!(!rkt_supports_os_arch("linux", "s390x"));
        assert!(!rkt_supports_os_arch("freebsd", "amd64"));
        assert!(validate_os_arch_labels(None, Some("whatever")).is_ok());
    }

    #[test]
    fn semver() {
        for ok in ["0.8.11", "1.0.0-alpha", "0.0.0-x", "1.2.3+meta", "01.2.3"] {
            assert!(validate_semver("acVersion", ok).is_ok(), "{ok}");
        }
        for bad in ["", "1.2", "a.b.c", "0.0.0", "1.2.3.4"] {
            assert!(validate_semver("acVersion", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn hashes() {
        assert!(validate_hash("id", "sha512-abc").is_ok());
        assert!(validate_hash("id", "sha256-abc").is_err());
        assert!(validate_hash("id", "sha512-").is_err());
        assert!(validate_hash("id", "sha512").is_err());
        assert!(validate_hash("id", "sha512-a-b").is_err());
    }
}
