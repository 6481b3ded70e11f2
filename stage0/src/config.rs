//! Configuration directories (docs/cli.md, "rkt config"): `*.json` files directly in
//! `auth.d` (kinds `auth` and `dockerAuth`), `paths.d` and `stage1.d` under the system, local
//! and user configuration directories, each with `rktKind` and `rktVersion: "v1"`. Within one
//! directory a setting may be given once; a later directory overrides an earlier one per
//! domain, registry or field.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use remote::credentials::Credentials;
use serde::Deserialize;
use serde_json::{json, Value};

/// The subdirectories and the kinds each may hold.
const SUBDIRS: [(&str, &[&str]); 3] = [
    ("auth.d", &["auth", "dockerAuth"]),
    ("paths.d", &["paths"]),
    ("stage1.d", &["stage1"]),
];

/// `auth` entries: how to authenticate to a host.
#[derive(Debug, Clone, PartialEq)]
pub enum HostAuth {
    Basic { user: String, password: String },
    OAuth { token: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct BasicCredentials {
    pub user: String,
    pub password: String,
}

/// The merged configuration.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    pub auth_per_host: BTreeMap<String, HostAuth>,
    pub docker_per_registry: BTreeMap<String, BasicCredentials>,
    pub data_dir: Option<PathBuf>,
    pub stage1_images_dir: Option<PathBuf>,
    pub stage1_name: Option<(String, String)>,
    pub stage1_location: Option<String>,
    /// `Authorization` headers for HTTP(S) fetches, from `auth_per_host`.
    pub credentials: Credentials,
}

#[derive(Deserialize)]
struct Header {
    #[serde(default, rename = "rktKind")]
    kind: String,
    #[serde(default, rename = "rktVersion")]
    version: String,
}

#[derive(Deserialize)]
struct AuthV1 {
    #[serde(default)]
    domains: Vec<String>,
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    credentials: Option<Value>,
}

#[derive(Deserialize, Default)]
struct BasicV1 {
    #[serde(default)]
    user: String,
    #[serde(default)]
    password: String,
}

#[derive(Deserialize)]
struct DockerAuthV1 {
    #[serde(default)]
    registries: Vec<String>,
    #[serde(default)]
    credentials: Option<BasicV1>,
}

#[derive(Deserialize)]
struct PathsV1 {
    #[serde(default)]
    data: String,
    #[serde(default, rename = "stage1-images")]
    stage1_images: String,
}

#[derive(Deserialize)]
struct Stage1V1 {
    #[serde(default)]
    name: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    location: String,
}

impl Config {
    /// Reads and merges the directories in order (system, local, then user).
    pub fn load(dirs: &[&Path]) -> Result<Config> {
        let mut merged = Config::default();
        for dir in dirs {
            let sub = Config::from_dir(dir)?;
            merged.merge(sub);
        }
        for (host, auth) in &merged.auth_per_host {
            match auth {
                HostAuth::Basic { user, password } => {
                    merged.credentials.add_basic(host, user, password)
                }
                HostAuth::OAuth { token } => merged.credentials.add_bearer(host, token),
            }
        }
        Ok(merged)
    }

    fn merge(&mut self, sub: Config) {
        self.auth_per_host.extend(sub.auth_per_host);
        self.docker_per_registry.extend(sub.docker_per_registry);
        if sub.data_dir.is_some() {
            self.data_dir = sub.data_dir;
        }
        if sub.stage1_images_dir.is_some() {
            self.stage1_images_dir = sub.stage1_images_dir;
        }
        if sub.stage1_name.is_some() {
            self.stage1_name = sub.stage1_name;
        }
        if sub.stage1_location.is_some() {
            self.stage1_location = sub.stage1_location;
        }
    }

    fn from_dir(dir: &Path) -> Result<Config> {
        let mut config = Config::default();
        if !valid_dir(dir)? {
            return Ok(config);
        }
        for (sub, kinds) in SUBDIRS {
            let d = dir.join(sub);
            if !valid_dir(&d)? {
                continue;
            }
            let mut files: Vec<PathBuf> = std::fs::read_dir(&d)
                .with_context(|| format!("cannot read {}", d.display()))?
                .flatten()
                .filter(|e| {
                    // Regular files only: rkt skips subdirectories and symlinks.
                    e.file_type().map(|t| t.is_file()).unwrap_or(false)
                })
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect();
            files.sort();
            for path in files {
                config.parse_file(&path, kinds)?;
            }
        }
        Ok(config)
    }

    fn parse_file(&mut self, path: &Path, kinds: &[&str]) -> Result<()> {
        let raw = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let header: Header = serde_json::from_slice(&raw)
            .with_context(|| format!("invalid JSON in {}", path.display()))?;
        if header.kind.is_empty() {
            bail!("no rktKind specified in {:?}", path.display().to_string());
        }
        if header.version.is_empty() {
            bail!(
                "no rktVersion specified in {:?}",
                path.display().to_string()
            );
        }
        if !kinds.contains(&header.kind.as_str()) {
            let dir = path.parent().unwrap_or(Path::new("")).display().to_string();
            let base = path.file_name().unwrap_or_default().to_string_lossy();
            bail!(
                "the configuration directory {dir:?} expects to have configuration files of kinds {:?}, but {base:?} has kind of {:?}",
                kinds.join("\", \""),
                header.kind
            );
        }
        if header.version != "v1" {
            bail!(
                "no parser available for configuration of kind {:?} and version {:?}",
                header.kind,
                header.version
            );
        }
        let parsed = match header.kind.as_str() {
            "auth" => self.parse_auth(&raw),
            "dockerAuth" => self.parse_docker_auth(&raw),
            "paths" => self.parse_paths(&raw),
            _ => self.parse_stage1(&raw),
        };
        parsed.with_context(|| format!("failed to parse {:?}", path.display().to_string()))
    }

    fn parse_auth(&mut self, raw: &[u8]) -> Result<()> {
        let auth: AuthV1 = serde_json::from_slice(raw)?;
        if auth.domains.is_empty() {
            bail!("no domains specified");
        }
        if auth.kind.is_empty() {
            bail!("no auth type specified");
        }
        let creds = auth.credentials.unwrap_or(Value::Null);
        let entry = match auth.kind.as_str() {
            "basic" => {
                let basic = basic_credentials(serde_json::from_value::<Option<BasicV1>>(creds)?)?;
                HostAuth::Basic {
                    user: basic.user,
                    password: basic.password,
                }
            }
            "oauth" => {
                let token = creds
                    .get("token")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                if token.is_empty() {
                    bail!("no oauth bearer token specified");
                }
                HostAuth::OAuth { token }
            }
            "aws" => bail!("the aws auth type is not supported by this rkt: use basic or oauth"),
            other => bail!("unknown auth type: {other:?}"),
        };
        for domain in auth.domains {
            if self.auth_per_host.contains_key(&domain) {
                bail!("auth for domain {domain:?} is already specified");
            }
            self.auth_per_host.insert(domain, entry.clone());
        }
        Ok(())
    }

    fn parse_docker_auth(&mut self, raw: &[u8]) -> Result<()> {
        let auth: DockerAuthV1 = serde_json::from_slice(raw)?;
        if auth.registries.is_empty() {
            bail!("no registries specified");
        }
        let basic = basic_credentials(auth.credentials)?;
        for registry in auth.registries {
            if self.docker_per_registry.contains_key(&registry) {
                bail!("credentials for docker registry {registry:?} are already specified");
            }
            self.docker_per_registry.insert(
                registry,
                BasicCredentials {
                    user: basic.user.clone(),
                    password: basic.password.clone(),
                },
            );
        }
        Ok(())
    }

    fn parse_paths(&mut self, raw: &[u8]) -> Result<()> {
        let paths: PathsV1 = serde_json::from_slice(raw)?;
        if !paths.data.is_empty() {
            if self.data_dir.is_some() {
                bail!("data directory is already specified");
            }
            if !Path::new(&paths.data).is_absolute() {
                bail!("data directory must be an absolute path");
            }
            self.data_dir = Some(paths.data.into());
        }
        if !paths.stage1_images.is_empty() {
            if self.stage1_images_dir.is_some() {
                bail!("stage1 images directory is already specified");
            }
            if !Path::new(&paths.stage1_images).is_absolute() {
                bail!("stage1 images directory must be an absolute path");
            }
            self.stage1_images_dir = Some(paths.stage1_images.into());
        }
        Ok(())
    }

    fn parse_stage1(&mut self, raw: &[u8]) -> Result<()> {
        let s: Stage1V1 = serde_json::from_slice(raw)
            .map_err(|e| anyhow!("invalid stage1 configuration: {e}"))?;
        if !s.version.is_empty() && s.name.is_empty() {
            bail!("default stage1 image version specified, but name is missing");
        }
        if !s.name.is_empty() && s.version.is_empty() {
            bail!("default stage1 image name specified, but version is missing");
        }
        if !s.location.is_empty() {
            if let Some((scheme, _)) = s.location.split_once("://") {
                let allowed = ["file", "docker", "http", "https"];
                if !allowed.contains(&scheme) {
                    bail!(
                        "default stage1 image location URL has invalid scheme {scheme:?}, allowed schemes are \"{}\"",
                        allowed.join("\", \"")
                    );
                }
            } else if !s.location.starts_with('/') {
                bail!("default stage1 image location is either a relative path or a URL without scheme");
            }
        }
        if !s.name.is_empty() {
            if self.stage1_name.is_some() {
                bail!("name and version of a default stage1 image are already specified");
            }
            self.stage1_name = Some((s.name, s.version));
        }
        if !s.location.is_empty() {
            if self.stage1_location.is_some() {
                bail!("location of a default stage1 image is already specified");
            }
            self.stage1_location = Some(s.location);
        }
        Ok(())
    }

    /// What `rkt config` prints: rkt's entries under `"stage0"`, each in the format of the
    /// files it came from.
    pub fn to_json(&self) -> Value {
        let mut stage0 = Vec::new();
        for (host, auth) in &self.auth_per_host {
            let (kind, creds) = match auth {
                HostAuth::Basic { user, password } => {
                    ("basic", json!({"user": user, "password": password}))
                }
                HostAuth::OAuth { token } => ("oauth", json!({ "token": token })),
            };
            stage0.push(json!({
                "rktVersion": "v1",
                "rktKind": "auth",
                "domains": [host],
                "type": kind,
                "credentials": creds,
            }));
        }
        for (registry, c) in &self.docker_per_registry {
            stage0.push(json!({
                "rktVersion": "v1",
                "rktKind": "dockerAuth",
                "registries": [registry],
                "credentials": {"user": c.user, "password": c.password},
            }));
        }
        let path_str = |p: &Option<PathBuf>| {
            p.as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        };
        stage0.push(json!({
            "rktVersion": "v1",
            "rktKind": "paths",
            "data": path_str(&self.data_dir),
            "stage1-images": path_str(&self.stage1_images_dir),
        }));
        let (name, version) = self.stage1_name.clone().unwrap_or_default();
        stage0.push(json!({
            "rktVersion": "v1",
            "rktKind": "stage1",
            "name": name,
            "version": version,
            "location": self.stage1_location.clone().unwrap_or_default(),
        }));
        json!({ "stage0": stage0 })
    }
}

fn basic_credentials(basic: Option<BasicV1>) -> Result<BasicV1> {
    let Some(basic) = basic else {
        bail!("no credentials");
    };
    if basic.user.is_empty() {
        bail!("user not specified");
    }
    if basic.password.is_empty() {
        bail!("password not specified");
    }
    Ok(basic)
}

/// A missing directory is no configuration; a file where a directory should be is an error.
fn valid_dir(path: &Path) -> Result<bool> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Ok(true),
        Ok(_) => bail!(
            "expected {:?} to be a directory",
            path.display().to_string()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(anyhow!(e).context(format!("cannot read {}", path.display()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, sub: &str, name: &str, body: &str) {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
        std::fs::write(dir.join(sub).join(name), body).unwrap();
    }

    #[test]
    fn later_directories_override_per_domain_and_field() {
        let sys = tempfile::tempdir().unwrap();
        let local = tempfile::tempdir().unwrap();
        write(
            sys.path(),
            "auth.d",
            "a.json",
            r#"{"rktKind":"auth","rktVersion":"v1","domains":["a.com","b.com"],"type":"basic","credentials":{"user":"u1","password":"p1"}}"#,
        );
        write(
            local.path(),
            "auth.d",
            "a.json",
            r#"{"rktKind":"auth","rktVersion":"v1","domains":["b.com"],"type":"oauth","credentials":{"token":"t2"}}"#,
        );
        write(
            sys.path(),
            "paths.d",
            "p.json",
            r#"{"rktKind":"paths","rktVersion":"v1","data":"/sys-data","stage1-images":"/s1"}"#,
        );
        write(
            local.path(),
            "paths.d",
            "p.json",
            r#"{"rktKind":"paths","rktVersion":"v1","data":"/local-data"}"#,
        );
        write(
            local.path(),
            "auth.d",
            "d.json",
            r#"{"rktKind":"dockerAuth","rktVersion":"v1","registries":["r.io"],"credentials":{"user":"du","password":"dp"}}"#,
        );
        write(local.path(), "auth.d", "ignored.txt", "not json");
        let c = Config::load(&[sys.path(), local.path()]).unwrap();
        assert_eq!(
            c.auth_per_host["a.com"],
            HostAuth::Basic {
                user: "u1".into(),
                password: "p1".into()
            }
        );
        assert_eq!(
            c.auth_per_host["b.com"],
            HostAuth::OAuth { token: "t2".into() }
        );
        assert_eq!(c.data_dir, Some(PathBuf::from("/local-data")));
        assert_eq!(c.stage1_images_dir, Some(PathBuf::from("/s1")));
        assert_eq!(c.docker_per_registry["r.io"].user, "du");
        assert_eq!(
            c.credentials
                .header_for("https://b.com/x")
                .unwrap()
                .as_str(),
            "Bearer t2"
        );
        let out = c.to_json();
        assert_eq!(out["stage0"].as_array().unwrap().len(), 5);
        assert_eq!(out["stage0"][3]["data"], "/local-data");
    }

    #[test]
    fn mistakes_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "paths.d",
            "p.json",
            r#"{"rktKind":"auth","rktVersion":"v1"}"#,
        );
        let e = format!("{:#}", Config::load(&[dir.path()]).unwrap_err());
        assert!(
            e.contains("expects to have configuration files of kinds"),
            "{e}"
        );
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "auth.d",
            "a.json",
            r#"{"rktKind":"auth","rktVersion":"v1","domains":["a"],"type":"basic","credentials":{"user":"u"}}"#,
        );
        let e = format!("{:#}", Config::load(&[dir.path()]).unwrap_err());
        assert!(
            e.contains("a.json") && e.contains("password not specified"),
            "{e}"
        );
        assert!(!e.contains("\"u\""), "{e}");
    }
}
