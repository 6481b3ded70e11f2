//! Reading manifests as leniently as rkt (Go's `encoding/json`) does.
//!
//! Go matches object keys to struct fields case-insensitively (an exact match wins), treats
//! `null` for any field as "absent", and ignores unknown keys. serde does none of that, so the
//! parsed `serde_json::Value` is first rewritten against a description of the schema: keys of
//! known structs are renamed to their canonical spelling, `null` members are dropped, `null`
//! list elements of struct type become `{}` and `null` string-map values become `""`. Keys of
//! free-form maps (`userAnnotations`, `userLabels`) and isolator values are left untouched.
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::ManifestError;

/// The shape of a JSON value in the appc schema.
pub(crate) enum Shape {
    /// Strings, numbers, booleans, lists of them, and opaque values (isolator values).
    Leaf,
    /// An object with known fields.
    Struct(&'static [(&'static str, Shape)]),
    /// A list whose elements have the given shape.
    List(&'static Shape),
    /// A string-to-string map whose keys are data, not field names.
    StringMap,
}

use Shape::{Leaf, List, StringMap, Struct};

const LABEL: Shape = Struct(&[("name", Leaf), ("value", Leaf)]);
const ISOLATOR: Shape = Struct(&[("name", Leaf), ("value", Leaf)]);
const PORT: Shape = Struct(&[
    ("name", Leaf),
    ("protocol", Leaf),
    ("port", Leaf),
    ("count", Leaf),
    ("socketActivated", Leaf),
]);

pub(crate) const APP: Shape = Struct(&[
    ("exec", Leaf),
    (
        "eventHandlers",
        List(&Struct(&[("name", Leaf), ("exec", Leaf)])),
    ),
    ("user", Leaf),
    ("group", Leaf),
    ("supplementaryGIDs", Leaf),
    ("workingDirectory", Leaf),
    ("environment", List(&LABEL)),
    (
        "mountPoints",
        List(&Struct(&[
            ("name", Leaf),
            ("path", Leaf),
            ("readOnly", Leaf),
        ])),
    ),
    ("ports", List(&PORT)),
    ("isolators", List(&ISOLATOR)),
    ("userAnnotations", StringMap),
    ("userLabels", StringMap),
]);

pub(crate) const IMAGE_MANIFEST: Shape = Struct(&[
    ("acKind", Leaf),
    ("acVersion", Leaf),
    ("name", Leaf),
    ("labels", List(&LABEL)),
    ("app", APP),
    ("annotations", List(&LABEL)),
    (
        "dependencies",
        List(&Struct(&[
            ("imageName", Leaf),
            ("imageID", Leaf),
            ("labels", List(&LABEL)),
            ("size", Leaf),
        ])),
    ),
    ("pathWhitelist", Leaf),
]);

pub(crate) const VOLUME: Shape = Struct(&[
    ("name", Leaf),
    ("kind", Leaf),
    ("source", Leaf),
    ("readOnly", Leaf),
    ("recursive", Leaf),
    ("mode", Leaf),
    ("uid", Leaf),
    ("gid", Leaf),
]);

pub(crate) const POD_MANIFEST: Shape = Struct(&[
    ("acVersion", Leaf),
    ("acKind", Leaf),
    (
        "apps",
        List(&Struct(&[
            ("name", Leaf),
            (
                "image",
                Struct(&[("name", Leaf), ("id", Leaf), ("labels", List(&LABEL))]),
            ),
            ("app", APP),
            ("readOnlyRootFS", Leaf),
            (
                "mounts",
                List(&Struct(&[
                    ("volume", Leaf),
                    ("path", Leaf),
                    ("appVolume", VOLUME),
                ])),
            ),
            ("annotations", List(&LABEL)),
        ])),
    ),
    ("volumes", List(&VOLUME)),
    ("isolators", List(&ISOLATOR)),
    ("annotations", List(&LABEL)),
    (
        "ports",
        List(&Struct(&[
            ("name", Leaf),
            ("hostPort", Leaf),
            ("hostIP", Leaf),
            ("podPort", PORT),
        ])),
    ),
    ("userAnnotations", StringMap),
    ("userLabels", StringMap),
]);

/// Rewrites `value` in place to the canonical spelling described by `shape`.
pub(crate) fn canonicalize(value: &mut Value, shape: &Shape) {
    match (shape, value) {
        (Struct(fields), Value::Object(map)) => {
            let old = std::mem::take(map);
            let mut exact = Map::new();
            for (key, mut member) in old {
                if member.is_null() {
                    continue;
                }
                let Some((canonical, inner)) = fields
                    .iter()
                    .find(|(f, _)| *f == key)
                    .or_else(|| fields.iter().find(|(f, _)| f.eq_ignore_ascii_case(&key)))
                else {
                    continue;
                };
                canonicalize(&mut member, inner);
                // An exact spelling wins over a case-insensitive one, whatever the order.
                if *canonical == key {
                    exact.insert(key, member);
                } else {
                    map.entry(canonical.to_string()).or_insert(member);
                }
            }
            map.extend(exact);
        }
        (List(inner), Value::Array(items)) => {
            for item in items {
                if item.is_null() && matches!(inner, Struct(_)) {
                    *item = Value::Object(Map::new());
                }
                canonicalize(item, inner);
            }
        }
        (StringMap, Value::Object(map)) => {
            for member in map.values_mut() {
                if member.is_null() {
                    *member = Value::String(String::new());
                }
            }
        }
        _ => {}
    }
}

/// Parses JSON bytes into `T` with Go's leniency (see the module documentation).
pub(crate) fn from_slice<T: DeserializeOwned>(
    bytes: &[u8],
    shape: &Shape,
) -> Result<T, ManifestError> {
    let mut value: Value = serde_json::from_slice(bytes).map_err(ManifestError::Json)?;
    if value.is_null() {
        value = Value::Object(Map::new());
    }
    canonicalize(&mut value, shape);
    serde_json::from_value(value).map_err(ManifestError::Json)
}

/// Looks a key up in a JSON object the way Go fills a struct field: exact spelling first, then
/// any case. `null` counts as absent.
pub(crate) fn get_field<'a>(map: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    map.get(name)
        .or_else(|| {
            map.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        })
        .filter(|v| !v.is_null())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_are_matched_case_insensitively_and_nulls_dropped() {
        let mut v = json!({
            "ACKIND": "ImageManifest",
            "acversion": "0.8.11",
            "name": "x",
            "labels": null,
            "app": {
                "Exec": ["/bin/sh"],
                "mountpoints": [{"NAME": "a", "path": "/a", "readonly": true}, null],
                "userLabels": {"Keep.Case": null},
                "isolators": [{"name": "x", "VALUE": {"Inner": null}}]
            },
            "unknown": 1
        });
        canonicalize(&mut v, &IMAGE_MANIFEST);
        assert_eq!(
            v,
            json!({
                "acKind": "ImageManifest",
                "acVersion": "0.8.11",
                "name": "x",
                "app": {
                    "exec": ["/bin/sh"],
                    "mountPoints": [{"name": "a", "path": "/a", "readOnly": true}, {}],
                    "userLabels": {"Keep.Case": ""},
                    "isolators": [{"name": "x", "value": {"Inner": null}}]
                }
            })
        );
    }

    #[test]
    fn exact_spelling_wins() {
        let mut v = json!({"readonly": false, "readOnly": true, "READONLY": false});
        canonicalize(&mut v, &Struct(&[("readOnly", Leaf)]));
        assert_eq!(v, json!({"readOnly": true}));
    }
}
