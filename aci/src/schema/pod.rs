//! The pod manifest (written by stage0 to `<pod>/pod`, read by stage1).
//!
//! Output: the five top-level lists are written as Go writes them, `null` for a nil slice and
//! `[]` for an empty one ([`GoSlice`]). rkt's generated pod manifest has `"apps"`,
//! `"annotations"` and `"ports"` allocated (`[]` when there are no ports) and `"volumes"` and
//! `"isolators"` nil (`null` without `--volume`); a manifest read back is written as it was.
use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::image::{kind_error, AC_VERSION};
use super::types::{
    check_identifier, check_name, find_annotation, validate_annotations, validate_labels,
    Annotation, Isolator, Label,
};
use super::{json, lenient, App, GoSlice, Port};
use crate::validate::{validate_hash, validate_semver};
use crate::{ManifestError, ValidationError};

pub const POD_MANIFEST_KIND: &str = "PodManifest";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PodManifest {
    pub ac_version: String,
    pub ac_kind: String,
    pub apps: GoSlice<RuntimeApp>,
    pub volumes: GoSlice<Volume>,
    pub isolators: GoSlice<Isolator>,
    pub annotations: GoSlice<Annotation>,
    pub ports: GoSlice<ExposedPort>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub user_annotations: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub user_labels: BTreeMap<String, String>,
}

/// An app of the pod: the image it comes from and the overrides applied to it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct RuntimeApp {
    pub name: String,
    pub image: RuntimeImage,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app: Option<App>,
    #[serde(rename = "readOnlyRootFS", skip_serializing_if = "std::ops::Not::not")]
    pub read_only_root_fs: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<Mount>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub annotations: Vec<Annotation>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RuntimeImage {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub id: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<Label>,
}

/// Mounts a volume (a pod volume by name, or its own `app_volume`) at `path` in an app.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Mount {
    pub volume: String,
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_volume: Option<Volume>,
}

/// A pod volume: `kind` is `host` (needs an absolute `source`) or `empty` (`mode`, `uid` and
/// `gid` default to "0755", 0 and 0).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Volume {
    pub name: String,
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recursive: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
}

/// A host port forwarded to an app port of the pod.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ExposedPort {
    pub name: String,
    pub host_port: u32,
    #[serde(rename = "hostIP", skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_port: Option<Port>,
}

impl PodManifest {
    /// An empty pod manifest with `acKind` and `acVersion` set.
    pub fn new() -> PodManifest {
        PodManifest {
            ac_version: AC_VERSION.to_string(),
            ac_kind: POD_MANIFEST_KIND.to_string(),
            ..PodManifest::default()
        }
    }

    /// Parses leniently (as rkt does), fills volume and port defaults, and validates.
    pub fn from_slice(bytes: &[u8]) -> Result<PodManifest, ManifestError> {
        let mut pm: PodManifest = lenient::from_slice(bytes, &lenient::POD_MANIFEST)?;
        pm.normalize();
        pm.validate()?;
        Ok(pm)
    }

    fn normalize(&mut self) {
        self.volumes.iter_mut().for_each(Volume::fill_defaults);
        for ra in &mut self.apps {
            if let Some(app) = &mut ra.app {
                app.normalize();
            }
            for m in &mut ra.mounts {
                if let Some(v) = &mut m.app_volume {
                    v.fill_defaults();
                }
            }
        }
        for p in &mut self.ports {
            if let Some(pp) = &mut p.pod_port {
                pp.normalize();
            }
        }
    }

    /// Checks every rule of the appc schema, plus: each mount names a pod volume unless it
    /// carries its own `appVolume`.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.ac_kind != POD_MANIFEST_KIND {
            return Err(kind_error(POD_MANIFEST_KIND, &self.ac_kind));
        }
        validate_semver("acVersion", &self.ac_version)?;
        let mut volumes = BTreeSet::new();
        for v in &self.volumes {
            v.validate("volumes")?;
            if !volumes.insert(v.name.as_str()) {
                return Err(ValidationError::duplicate("volumes name", &v.name));
            }
        }
        let mut apps = BTreeSet::new();
        for ra in &self.apps {
            ra.validate(&volumes)?;
            if !apps.insert(ra.name.as_str()) {
                return Err(ValidationError::duplicate("apps name", &ra.name));
            }
        }
        crate::isolator::validate_each("isolators", &self.isolators)?;
        validate_annotations("annotations", &self.annotations)?;
        for p in &self.ports {
            check_name("ports name", &p.name)?;
            if let Some(ip) = &p.host_ip {
                if ip.parse::<std::net::IpAddr>().is_err() {
                    return Err(ValidationError::invalid(
                        format!("ports {:?} hostIP", p.name),
                        ip,
                        "must be an IP address",
                    ));
                }
            }
            if let Some(pp) = &p.pod_port {
                pp.validate(&format!("ports {:?} podPort", p.name))?;
            }
        }
        Ok(())
    }

    pub fn annotation(&self, name: &str) -> Option<&str> {
        find_annotation(&self.annotations, name)
    }

    /// The app of that name.
    pub fn app(&self, name: &str) -> Option<&RuntimeApp> {
        self.apps.iter().find(|a| a.name == name)
    }

    /// The pod volume of that name.
    pub fn volume(&self, name: &str) -> Option<&Volume> {
        self.volumes.iter().find(|v| v.name == name)
    }

    /// Compact JSON, as Go's `json.Marshal` writes it.
    pub fn to_json(&self) -> Vec<u8> {
        json::to_vec(self, false)
    }

    /// Tab-indented JSON (`json.MarshalIndent(v, "", "\t")`, no final newline).
    pub fn to_json_pretty(&self) -> Vec<u8> {
        json::to_vec(self, true)
    }
}

impl RuntimeApp {
    fn validate(&self, volumes: &BTreeSet<&str>) -> Result<(), ValidationError> {
        check_name("apps name", &self.name)?;
        let field = format!("app {:?}", self.name);
        if self.image.id.is_empty() {
            return Err(ValidationError::missing(format!("{field} image id")));
        }
        validate_hash(&format!("{field} image id"), &self.image.id)?;
        if let Some(name) = &self.image.name {
            check_identifier(&format!("{field} image name"), name)?;
        }
        validate_labels(&format!("{field} image labels"), &self.image.labels)?;
        if let Some(app) = &self.app {
            app.validate(&format!("{field} app"))?;
        }
        for m in &self.mounts {
            check_name(&format!("{field} mounts volume"), &m.volume)?;
            if m.path.is_empty() {
                return Err(ValidationError::missing(format!(
                    "{field} mounts {:?} path",
                    m.volume
                )));
            }
            match &m.app_volume {
                Some(v) => v.validate(&format!("{field} mounts appVolume"))?,
                None if !volumes.contains(m.volume.as_str()) => {
                    return Err(ValidationError::invalid(
                        format!("{field} mounts volume"),
                        &m.volume,
                        "no pod volume has this name",
                    ))
                }
                None => {}
            }
        }
        validate_annotations(&format!("{field} annotations"), &self.annotations)
    }
}

const EMPTY_DEFAULT_MODE: &str = "0755";

fn check_mode(field: &str, mode: &str) -> Result<(), ValidationError> {
    let ok = !mode.is_empty()
        && mode.bytes().all(|b| (b'0'..=b'7').contains(&b))
        && u32::from_str_radix(mode, 8).is_ok_and(|m| m <= 0o7777);
    if ok {
        Ok(())
    } else {
        Err(ValidationError::invalid(
            field,
            mode,
            "must be an octal mode no larger than 07777",
        ))
    }
}

fn parse_bool(field: &str, s: &str) -> Result<bool, ValidationError> {
    crate::go::parse_bool(s)
        .ok_or_else(|| ValidationError::invalid(field, s, "must be true or false"))
}

impl Volume {
    /// Parses a `--volume` argument like appc's `VolumeFromString`:
    /// `NAME,kind=host,source=/x[,readOnly=BOOL][,recursive=BOOL]` or
    /// `NAME,kind=empty[,mode=0755][,uid=0][,gid=0][,readOnly=BOOL]`. Keys are matched without
    /// regard to case (appc's are case-sensitive; accepting `readonly` is harmless).
    pub fn from_flag(s: &str) -> Result<Volume, ValidationError> {
        let mut v = Volume::default();
        let (name, rest) = s.split_once(',').unwrap_or((s, ""));
        check_name("volume name", name)?;
        v.name = name.to_string();
        let field = |key: &str| format!("volume {name:?} {key}");
        let mut seen = BTreeSet::new();
        for part in rest.split(',').filter(|_| !rest.is_empty()) {
            let Some((key, value)) = part.split_once('=') else {
                return Err(ValidationError::invalid(
                    format!("volume {name:?} parameter"),
                    part,
                    "must be KEY=VALUE",
                ));
            };
            let canonical =
                match key.to_ascii_lowercase().as_str() {
                    "name" => "name",
                    "kind" => "kind",
                    "source" => "source",
                    "readonly" => "readOnly",
                    "recursive" => "recursive",
                    "mode" => "mode",
                    "uid" => "uid",
                    "gid" => "gid",
                    _ => return Err(ValidationError::invalid(
                        format!("volume {name:?} parameter"),
                        key,
                        "unknown key (known: kind, source, readOnly, recursive, mode, uid, gid)",
                    )),
                };
            if canonical == "name" || !seen.insert(canonical) {
                return Err(ValidationError::duplicate(
                    format!("volume {name:?} parameter"),
                    key,
                ));
            }
            let id = |what: &str| {
                value.parse::<u32>().map_err(|_| {
                    ValidationError::invalid(field(what), value, "must be a non-negative integer")
                })
            };
            match canonical {
                "kind" => v.kind = value.to_string(),
                "source" => v.source = Some(value.to_string()),
                "readOnly" => v.read_only = Some(parse_bool(&field("readOnly"), value)?),
                "recursive" => v.recursive = Some(parse_bool(&field("recursive"), value)?),
                "mode" => v.mode = Some(value.to_string()),
                "uid" => v.uid = Some(id("uid")?),
                _ => v.gid = Some(id("gid")?),
            }
        }
        v.fill_defaults();
        v.validate("volume")?;
        Ok(v)
    }

    /// Empty volumes get mode "0755", uid 0 and gid 0 when not given (appc defaults).
    pub fn fill_defaults(&mut self) {
        if self.kind == "empty" {
            self.mode
                .get_or_insert_with(|| EMPTY_DEFAULT_MODE.to_string());
            self.uid.get_or_insert(0);
            self.gid.get_or_insert(0);
        }
    }

    /// The mode of an empty volume as a number (after `fill_defaults`, 0o755 when unset).
    pub fn mode_bits(&self) -> u32 {
        self.mode
            .as_deref()
            .and_then(|m| u32::from_str_radix(m, 8).ok())
            .unwrap_or(0o755)
    }

    pub(crate) fn validate(&self, field: &str) -> Result<(), ValidationError> {
        check_name(&format!("{field} name"), &self.name)?;
        let f = |key: &str| format!("volume {:?} {key}", self.name);
        match self.kind.as_str() {
            "empty" => {
                if let Some(src) = &self.source {
                    if !src.is_empty() {
                        return Err(ValidationError::invalid(
                            f("source"),
                            src,
                            "an empty volume has no source",
                        ));
                    }
                }
                check_mode(
                    &f("mode"),
                    self.mode.as_deref().unwrap_or(EMPTY_DEFAULT_MODE),
                )
            }
            "host" => {
                let src = self.source.as_deref().unwrap_or("");
                if src.is_empty() {
                    return Err(ValidationError::missing(f("source")));
                }
                if !src.starts_with('/') {
                    return Err(ValidationError::invalid(
                        f("source"),
                        src,
                        "must be an absolute path",
                    ));
                }
                for (key, set) in [
                    ("mode", self.mode.is_some()),
                    ("uid", self.uid.is_some()),
                    ("gid", self.gid.is_some()),
                ] {
                    if set {
                        return Err(ValidationError::invalid(
                            f(key),
                            "set",
                            "only empty volumes take mode, uid and gid",
                        ));
                    }
                }
                Ok(())
            }
            "" => Err(ValidationError::missing(f("kind"))),
            other => Err(ValidationError::invalid(
                f("kind"),
                other,
                "must be host or empty",
            )),
        }
    }
}

#[cfg(test)]
#[path = "pod_tests.rs"]
mod tests;
