//! The spellings rkt inherits from Go, in one place: `strconv.ParseBool`, `path.Clean` and
//! `encoding/json`'s output (implemented with the manifests, in `schema::json`).

pub use crate::schema::json::to_vec as to_json;

/// Go's `strconv.ParseBool`: `1 t T TRUE true True`, `0 f F FALSE false False`.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `path.Clean`: the shortest lexically equal path (`/a//b/../c/` → `/a/c`, `a/..` →
/// `.`); `..` never climbs above `/` of an absolute path.
pub fn clean_path(p: &str) -> String {
    let absolute = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&last) if last != ".." => {
                    parts.pop();
                }
                _ if absolute => {}
                _ => parts.push(".."),
            },
            c => parts.push(c),
        }
    }
    match (absolute, parts.is_empty()) {
        (true, _) => format!("/{}", parts.join("/")),
        (false, true) => ".".to_string(),
        (false, false) => parts.join("/"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bools_as_go_spells_them() {
        for t in ["1", "t", "T", "true", "TRUE", "True"] {
            assert_eq!(parse_bool(t), Some(true), "{t}");
        }
        for f in ["0", "f", "F", "false", "FALSE", "False"] {
            assert_eq!(parse_bool(f), Some(false), "{f}");
        }
        for bad in ["", "yes", "tRUE", " true"] {
            assert_eq!(parse_bool(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn paths_clean_as_go_cleans_them() {
        for (input, clean) in [
            ("/var//log/../data/", "/var/data"),
            ("/", "/"),
            ("", "."),
            ("/..", "/"),
            ("a/../..", ".."),
            ("./a/b/", "a/b"),
            ("/a/./b/../../c", "/c"),
        ] {
            assert_eq!(clean_path(input), clean, "{input:?}");
        }
    }
}
