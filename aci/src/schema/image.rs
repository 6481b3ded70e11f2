//! The image manifest (`manifest` at the top of an ACI).
use serde::{Deserialize, Serialize};

use super::types::{
    check_identifier, find_annotation, find_label, validate_annotations, validate_dependency,
    validate_labels, Annotation, Dependency, Label,
};
use super::{json, lenient, App};
use crate::validate::validate_semver;
use crate::{ManifestError, ValidationError};

pub const IMAGE_MANIFEST_KIND: &str = "ImageManifest";
/// The appc spec version this crate implements and writes.
pub const AC_VERSION: &str = "0.8.11";

/// An appc image manifest. Fields are in the order Go writes them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ImageManifest {
    pub ac_kind: String,
    pub ac_version: String,
    pub name: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<Label>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app: Option<App>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub annotations: Vec<Annotation>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dependencies: Vec<Dependency>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub path_whitelist: Vec<String>,
}

impl ImageManifest {
    /// A manifest with `acKind`, `acVersion` and `name` set and nothing else.
    pub fn new(name: &str) -> ImageManifest {
        ImageManifest {
            ac_kind: IMAGE_MANIFEST_KIND.to_string(),
            ac_version: AC_VERSION.to_string(),
            name: name.to_string(),
            ..ImageManifest::default()
        }
    }

    /// Parses leniently (as rkt does) and validates.
    pub fn from_slice(bytes: &[u8]) -> Result<ImageManifest, ManifestError> {
        let mut m: ImageManifest = lenient::from_slice(bytes, &lenient::IMAGE_MANIFEST)?;
        if let Some(app) = &mut m.app {
            app.normalize();
        }
        m.validate()?;
        Ok(m)
    }

    /// Checks every rule of the appc schema; the error names the field and the bad value.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.ac_kind != IMAGE_MANIFEST_KIND {
            return Err(kind_error(IMAGE_MANIFEST_KIND, &self.ac_kind));
        }
        validate_semver("acVersion", &self.ac_version)?;
        check_identifier("name", &self.name)?;
        validate_labels("labels", &self.labels)?;
        if let Some(app) = &self.app {
            app.validate("app")?;
        }
        validate_annotations("annotations", &self.annotations)?;
        for dep in &self.dependencies {
            validate_dependency(&format!("dependencies {:?}", dep.image_name), dep)?;
        }
        Ok(())
    }

    pub fn label(&self, name: &str) -> Option<&str> {
        find_label(&self.labels, name)
    }

    pub fn annotation(&self, name: &str) -> Option<&str> {
        find_annotation(&self.annotations, name)
    }

    /// Compact JSON, as Go's `json.Marshal` writes it.
    pub fn to_json(&self) -> Vec<u8> {
        json::to_vec(self, false)
    }

    /// Tab-indented JSON, as `rkt image cat-manifest --pretty-print` prints it (no final newline).
    pub fn to_json_pretty(&self) -> Vec<u8> {
        json::to_vec(self, true)
    }
}

pub(crate) fn kind_error(expected: &str, got: &str) -> ValidationError {
    if got.is_empty() {
        return ValidationError::missing("acKind");
    }
    ValidationError::invalid("acKind", got, format!("must be {expected:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{EnvVar, Port};

    const FULL: &str = r#"{
        "acKind": "ImageManifest",
        "acVersion": "0.8.11",
        "name": "example.com/reduce-worker",
        "labels": [
            {"name": "version", "value": "1.0.0"},
            {"name": "arch", "value": "amd64"},
            {"name": "os", "value": "linux"}
        ],
        "app": {
            "exec": ["/usr/bin/reduce-worker", "--quiet"],
            "user": "100",
            "group": "300",
            "supplementaryGids": [400, 500],
            "eventHandlers": [{"exec": ["/usr/bin/data-downloader"], "name": "pre-start"}],
            "workingDirectory": "/opt/work",
            "environment": [{"name": "REDUCE_WORKER_DEBUG", "value": "true"}],
            "isolators": [
                {"name": "resource/cpu", "value": {"request": "250m", "limit": "500m"}},
                {"name": "example.com/custom", "value": {"Anything": [1, 2]}}
            ],
            "mountPoints": [{"name": "work", "path": "/var/lib/work", "readOnly": false}],
            "ports": [{"name": "health", "port": 4000, "protocol": "tcp", "socketActivated": true}],
            "userLabels": {"Team": "x"}
        },
        "dependencies": [
            {"imageName": "example.com/reduce-worker-base", "imageID": "sha512-abc",
             "labels": [{"name": "os", "value": "linux"}], "size": 100}
        ],
        "pathWhitelist": ["/etc/ca/example.com/crt", "/usr/bin/map-reduce-worker"],
        "annotations": [
            {"name": "authors", "value": "Carly"},
            {"name": "created", "value": "2014-10-27T19:32:58Z"},
            {"name": "homepage", "value": "https://example.com/"}
        ]
    }"#;

    #[test]
    fn parses_the_spec_example() {
        let m = ImageManifest::from_slice(FULL.as_bytes()).unwrap();
        assert_eq!(m.name, "example.com/reduce-worker");
        assert_eq!(m.label("os"), Some("linux"));
        assert_eq!(m.annotation("authors"), Some("Carly"));
        let app = m.app.as_ref().unwrap();
        assert_eq!(app.supplementary_gids, vec![400, 500]);
        assert_eq!(app.ports[0].count, 1, "count defaults to 1");
        assert_eq!(app.isolators.len(), 2);
        assert_eq!(app.user_labels["Team"], "x");
        assert_eq!(m.dependencies[0].image_id.as_deref(), Some("sha512-abc"));
        assert_eq!(m.dependencies[0].size, Some(100));
    }

    #[test]
    fn round_trips_compact_and_pretty() {
        let m = ImageManifest::from_slice(FULL.as_bytes()).unwrap();
        for bytes in [m.to_json(), m.to_json_pretty()] {
            assert_eq!(ImageManifest::from_slice(&bytes).unwrap(), m);
        }
        let compact = String::from_utf8(m.to_json()).unwrap();
        assert!(compact.starts_with(
            r#"{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/reduce-worker","labels":["#
        ));
        // Go order: app, annotations, dependencies, pathWhitelist.
        let (a, b, c) = (
            compact.find("\"annotations\"").unwrap(),
            compact.find("\"dependencies\"").unwrap(),
            compact.find("\"pathWhitelist\"").unwrap(),
        );
        assert!(compact.find("\"app\"").unwrap() < a && a < b && b < c);
        assert!(compact.contains(r#""supplementaryGIDs":[400,500]"#));
        assert!(
            !compact.contains(r#""readOnly""#),
            "false readOnly is omitted"
        );
        assert!(compact.contains(r#""count":1"#));
        let pretty = String::from_utf8(m.to_json_pretty()).unwrap();
        assert!(pretty.starts_with("{\n\t\"acKind\": \"ImageManifest\",\n"));
    }

    #[test]
    fn minimal_output_omits_empty_fields() {
        let m = ImageManifest::new("example.com/x");
        assert_eq!(
            String::from_utf8(m.to_json()).unwrap(),
            r#"{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/x"}"#
        );
        let mut m = m;
        m.app = Some(App {
            user: "0".into(),
            group: "0".into(),
            ..App::default()
        });
        assert_eq!(
            String::from_utf8(m.to_json()).unwrap(),
            r#"{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/x","app":{"exec":[],"user":"0","group":"0"}}"#
        );
    }

    #[test]
    fn lenient_reading() {
        let m = ImageManifest::from_slice(
            br#"{"ACKind":"ImageManifest","acversion":"0.8.11","NAME":"x","labels":null,
                "annotations":null,"dependencies":null,"pathWhitelist":null,"unknown":{"a":1},
                "app":{"exec":null,"user":"0","group":"0","environment":null,"isolators":null,
                       "mountpoints":[{"name":"a","path":"/a","readonly":true}],
                       "ports":[{"name":"p","port":1,"count":0}],
                       "userAnnotations":null}}"#,
        )
        .unwrap();
        let app = m.app.unwrap();
        assert!(app.mount_points[0].read_only);
        assert!(app.exec.is_empty());
        assert_eq!(app.ports[0].count, 1);
        assert!(m.labels.is_empty());
    }

    fn reject(json: &str) -> String {
        ImageManifest::from_slice(json.as_bytes())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn rejections_name_field_and_value() {
        let base = |extra: &str| {
            format!(r#"{{"acKind":"ImageManifest","acVersion":"0.8.11","name":"x"{extra}}}"#)
        };
        assert_eq!(
            reject(r#"{"acKind":"PodManifest","acVersion":"0.8.11","name":"x"}"#),
            "invalid acKind \"PodManifest\": must be \"ImageManifest\""
        );
        assert_eq!(
            reject(r#"{"acVersion":"0.8.11","name":"x"}"#),
            "acKind must be set"
        );
        assert!(
            reject(r#"{"acKind":"ImageManifest","acVersion":"0.8","name":"x"}"#)
                .contains("acVersion \"0.8\"")
        );
        assert!(reject(r#"{"acKind":"ImageManifest","acVersion":"1.0.0"}"#)
            .contains("name must be set"));
        assert!(
            reject(r#"{"acKind":"ImageManifest","acVersion":"1.0.0","name":"Bad Name"}"#)
                .contains("name \"Bad Name\"")
        );
        assert!(reject(&base(r#","labels":[{"name":"name","value":"x"}]"#)).contains("\"name\""));
        assert!(reject(&base(
            r#","labels":[{"name":"os","value":"linux"},{"name":"arch","value":"mips"}]"#
        ))
        .contains("\"mips\""));
        assert!(reject(&base(r#","app":{"exec":["/x"],"user":"0"}"#)).contains("app.group"));
        assert!(reject(&base(
            r#","app":{"user":"0","group":"0","workingDirectory":"rel"}"#
        ))
        .contains("\"rel\""));
        assert!(reject(&base(r#","dependencies":[{"imageName":""}]"#)).contains("imageName"));
        assert!(reject(&base(
            r#","dependencies":[{"imageName":"a","imageID":"md5-00"}]"#
        ))
        .contains("\"md5-00\""));
        assert!(reject(&base(
            r#","annotations":[{"name":"created","value":"now"}]"#
        ))
        .contains("\"now\""));
        assert!(reject(&base(
            r#","app":{"user":"0","group":"0","isolators":[{"name":"os/linux/cpu-shares","value":1}]}"#
        ))
        .contains("os/linux/cpu-shares"));
        assert_eq!(reject("{"), "cannot decode the manifest JSON");
        assert_eq!(
            reject(&base(r#","labels":{"a":"b"}"#)),
            "cannot decode the manifest JSON"
        );
    }

    #[test]
    fn validate_constructed_manifest() {
        let mut m = ImageManifest::new("example.com/app");
        m.app = Some(App {
            exec: vec!["/bin/true".into()],
            user: "0".into(),
            group: "0".into(),
            environment: vec![EnvVar {
                name: "A".into(),
                value: "1".into(),
            }],
            ports: vec![Port {
                name: "http".into(),
                protocol: "tcp".into(),
                port: 80,
                ..Port::default()
            }],
            ..App::default()
        });
        assert!(m.validate().is_ok());
        let again = ImageManifest::from_slice(&m.to_json()).unwrap();
        assert_eq!(again, m);
    }
}
