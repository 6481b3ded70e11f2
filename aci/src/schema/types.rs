//! Small types shared by image and pod manifests, and the list rules that apply to them.
use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::validate::{is_ac_identifier, validate_hash, validate_os_arch_labels};
use crate::ValidationError;

/// `{name, value}`; names are AC Identifiers, unique in their list, and never `name`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Label {
    pub name: String,
    pub value: String,
}

/// `{name, value}`; names are AC Identifiers, unique in their list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Annotation {
    pub name: String,
    pub value: String,
}

/// An isolator. Known names are validated by [`crate::isolator`]; the value of unknown ones is
/// kept verbatim. A missing value is `null`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Isolator {
    pub name: String,
    pub value: serde_json::Value,
}

/// An image this one is layered on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Dependency {
    pub image_name: String,
    #[serde(rename = "imageID", skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<Label>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

pub(crate) fn check_identifier(field: &str, value: &str) -> Result<(), ValidationError> {
    if value.is_empty() {
        return Err(ValidationError::missing(field));
    }
    if !is_ac_identifier(value) {
        return Err(ValidationError::invalid(
            field,
            value,
            "must be an AC Identifier: lower-case letters, digits and -._~/, starting and ending with a letter or digit",
        ));
    }
    Ok(())
}

pub(crate) fn check_name(field: &str, value: &str) -> Result<(), ValidationError> {
    if value.is_empty() {
        return Err(ValidationError::missing(field));
    }
    if !crate::validate::is_ac_name(value) {
        return Err(ValidationError::invalid(
            field,
            value,
            "must be an AC Name: lower-case letters, digits and dashes, starting and ending with a letter or digit",
        ));
    }
    Ok(())
}

/// Label list rules: AC Identifier names, unique, none called `name`, valid os/arch pair.
pub(crate) fn validate_labels(field: &str, labels: &[Label]) -> Result<(), ValidationError> {
    let mut seen = BTreeSet::new();
    for label in labels {
        check_identifier(&format!("{field} name"), &label.name)?;
        if label.name == "name" {
            return Err(ValidationError::invalid(
                format!("{field} name"),
                "name",
                "the image name is not a label",
            ));
        }
        if !seen.insert(label.name.as_str()) {
            return Err(ValidationError::duplicate(
                format!("{field} name"),
                &label.name,
            ));
        }
    }
    let get = |n: &str| {
        labels
            .iter()
            .find(|l| l.name == n)
            .map(|l| l.value.as_str())
    };
    validate_os_arch_labels(get("os"), get("arch"))
}

/// Annotation list rules: AC Identifier names, unique; `created` is an RFC 3339 date and
/// `homepage`/`documentation` are http(s) URLs.
pub(crate) fn validate_annotations(
    field: &str,
    annotations: &[Annotation],
) -> Result<(), ValidationError> {
    let mut seen = BTreeSet::new();
    for a in annotations {
        check_identifier(&format!("{field} name"), &a.name)?;
        if !seen.insert(a.name.as_str()) {
            return Err(ValidationError::duplicate(format!("{field} name"), &a.name));
        }
        let what = format!("{field} {:?}", a.name);
        match a.name.as_str() {
            "created" if !is_rfc3339(&a.value) => {
                return Err(ValidationError::invalid(
                    what,
                    &a.value,
                    "must be an RFC 3339 date such as 2016-01-02T15:04:05Z",
                ))
            }
            "homepage" | "documentation" if !is_http_url(&a.value) => {
                return Err(ValidationError::invalid(
                    what,
                    &a.value,
                    "must be an http or https URL",
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

pub(crate) fn validate_dependency(field: &str, dep: &Dependency) -> Result<(), ValidationError> {
    check_identifier(&format!("{field} imageName"), &dep.image_name)?;
    if let Some(id) = &dep.image_id {
        validate_hash(&format!("{field} imageID"), id)?;
    }
    validate_labels(&format!("{field} labels"), &dep.labels)
}

fn find<'a>(list: impl IntoIterator<Item = (&'a str, &'a str)>, name: &str) -> Option<&'a str> {
    list.into_iter().find(|(n, _)| *n == name).map(|(_, v)| v)
}

pub(crate) fn find_label<'a>(labels: &'a [Label], name: &str) -> Option<&'a str> {
    find(
        labels.iter().map(|l| (l.name.as_str(), l.value.as_str())),
        name,
    )
}

pub(crate) fn find_annotation<'a>(annotations: &'a [Annotation], name: &str) -> Option<&'a str> {
    find(
        annotations
            .iter()
            .map(|a| (a.name.as_str(), a.value.as_str())),
        name,
    )
}

fn digits(s: &str, range: std::ops::Range<usize>) -> Option<u32> {
    let part = s.get(range)?;
    part.bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| part.parse().ok())
        .flatten()
}

/// `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`, with calendar checks, like Go's `time.RFC3339`.
pub(crate) fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return false;
    }
    let (Some(year), Some(month), Some(day), Some(hour), Some(min), Some(sec)) = (
        digits(s, 0..4),
        digits(s, 5..7),
        digits(s, 8..10),
        digits(s, 11..13),
        digits(s, 14..16),
        digits(s, 17..19),
    ) else {
        return false;
    };
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    if day == 0 || day > days_in_month || hour > 23 || min > 59 || sec > 59 {
        return false;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return false;
        }
        rest = &frac[n..];
    }
    if rest == "Z" {
        return true;
    }
    match rest.as_bytes() {
        [b'+' | b'-', ..] if rest.len() == 6 && rest.as_bytes()[3] == b':' => {
            matches!((digits(rest, 1..3), digits(rest, 4..6)), (Some(h), Some(m)) if h < 24 && m < 60)
        }
        _ => false,
    }
}

/// An absolute URL whose scheme is http or https (case-insensitive, as Go lower-cases it).
pub(crate) fn is_http_url(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else {
        return false;
    };
    let scheme = scheme.to_ascii_lowercase();
    (scheme == "http" || scheme == "https")
        && !rest.is_empty()
        && !s.bytes().any(|b| b.is_ascii_control() || b == b' ')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Vec<Label> {
        pairs
            .iter()
            .map(|(n, v)| Label {
                name: n.to_string(),
                value: v.to_string(),
            })
            .collect()
    }

    #[test]
    fn label_rules() {
        assert!(validate_labels(
            "labels",
            &labels(&[("version", "1"), ("os", "linux"), ("arch", "amd64")])
        )
        .is_ok());
        let err = validate_labels("labels", &labels(&[("name", "x")])).unwrap_err();
        assert!(err.to_string().contains("\"name\""), "{err}");
        let err = validate_labels("labels", &labels(&[("a", "1"), ("a", "2")])).unwrap_err();
        assert_eq!(err.to_string(), "duplicate labels name \"a\"");
        let err = validate_labels("labels", &labels(&[("Bad", "1")])).unwrap_err();
        assert!(err.to_string().contains("\"Bad\""), "{err}");
        let err =
            validate_labels("labels", &labels(&[("os", "linux"), ("arch", "sparc")])).unwrap_err();
        assert!(err.to_string().contains("\"sparc\""), "{err}");
        let err = validate_labels("labels", &labels(&[("os", "windows")])).unwrap_err();
        assert!(err.to_string().contains("\"windows\""), "{err}");
        // An arch without an os is not checked (as in the Go schema).
        assert!(validate_labels("labels", &labels(&[("arch", "sparc")])).is_ok());
    }

    #[test]
    fn annotation_rules() {
        let a = |n: &str, v: &str| Annotation {
            name: n.into(),
            value: v.into(),
        };
        assert!(validate_annotations(
            "annotations",
            &[
                a("created", "2016-02-29T23:59:59.5+01:00"),
                a("homepage", "https://example.com/"),
                a("documentation", "HTTP://example.com/doc"),
                a("authors", "someone")
            ]
        )
        .is_ok());
        for bad in [
            a("created", "2015-02-29T00:00:00Z"),
            a("created", "2016-01-02 15:04:05Z"),
            a("created", "yesterday"),
            a("homepage", "ftp://example.com"),
            a("documentation", "example.com"),
            a("Upper", "x"),
        ] {
            let err = validate_annotations("annotations", std::slice::from_ref(&bad)).unwrap_err();
            assert!(
                err.to_string().contains(&format!("{:?}", bad.value))
                    || err.to_string().contains("Upper"),
                "{err}"
            );
        }
        let err = validate_annotations("annotations", &[a("x", "1"), a("x", "2")]).unwrap_err();
        assert!(matches!(err, ValidationError::Duplicate { .. }));
    }

    #[test]
    fn rfc3339() {
        assert!(is_rfc3339("2016-01-02T15:04:05Z"));
        assert!(is_rfc3339("2016-01-02T15:04:05-07:00"));
        assert!(!is_rfc3339("2016-13-02T15:04:05Z"));
        assert!(!is_rfc3339("2016-01-02T15:04:05"));
        assert!(!is_rfc3339("2016-01-02T15:04:05.Z"));
        assert!(!is_rfc3339("2016-01-02T24:00:00Z"));
    }
}
