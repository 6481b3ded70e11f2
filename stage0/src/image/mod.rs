//! Image arguments: classification, resolution in the store and fetching (docs/cli.md,
//! "Image arguments"): local files, HTTP(S) URLs ([`remote`]), names by appc discovery
//! ([`discovery`]), each verified against the keystore unless `--insecure-options=image`.
use std::fs::File;
use std::path::{Path, PathBuf};

use aci::schema::Label;
use anyhow::{anyhow, bail, Context, Result};
use store::{ImageKey, ImportOptions, Store};

use crate::globals::Globals;

pub mod discovery;
pub mod docker;
pub mod keys;
pub mod limits;
pub mod remote;

/// What an image argument refers to.
#[derive(Debug, Clone, PartialEq)]
pub enum ImageArg {
    /// `sha512-…`: only ever looked up in the store.
    Hash(String),
    /// A local ACI file (path or `file://` URL).
    File(PathBuf),
    /// `http://` or `https://` URL of an ACI.
    Http(String),
    /// `docker://…` or `docker:…`.
    Docker(String),
    /// An appc name with optional version and labels.
    Name { name: String, labels: Vec<Label> },
}

/// When images are fetched instead of taken from the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    New,
    Update,
    Never,
}

impl PullPolicy {
    pub fn parse(s: &str) -> Result<PullPolicy> {
        match s {
            "new" => Ok(PullPolicy::New),
            "update" => Ok(PullPolicy::Update),
            "never" => Ok(PullPolicy::Never),
            _ => bail!("invalid pull policy {s:?}: use new, update or never"),
        }
    }
}

/// Classifies an image argument as rkt does.
pub fn classify(arg: &str) -> Result<ImageArg> {
    // Anything spelled like a hash is one (a malformed one is an error, never a name).
    if store::is_image_hash(arg) || arg.starts_with("sha512-") {
        return Ok(ImageArg::Hash(arg.to_string()));
    }
    if let Some(rest) = arg
        .strip_prefix("docker://")
        .or_else(|| arg.strip_prefix("docker:"))
    {
        return Ok(ImageArg::Docker(rest.to_string()));
    }
    if let Some((scheme, rest)) = arg.split_once("://") {
        return match scheme {
            "file" => Ok(ImageArg::File(PathBuf::from(rest))),
            "http" | "https" => Ok(ImageArg::Http(arg.to_string())),
            _ => parse_name(arg),
        };
    }
    let path = Path::new(arg);
    if path.is_absolute() || path.is_file() {
        return Ok(ImageArg::File(path.to_path_buf()));
    }
    if arg.contains(':') {
        return parse_name(arg);
    }
    if arg.contains("./") || arg.ends_with(".aci") {
        return Ok(ImageArg::File(path.to_path_buf()));
    }
    parse_name(arg)
}

/// `name[:version][,label=value...]`.
fn parse_name(arg: &str) -> Result<ImageArg> {
    let mut parts = arg.split(',');
    let head = parts.next().unwrap_or_default();
    let (name, version) = match head.split_once(':') {
        Some((n, v)) => (n, Some(v)),
        None => (head, None),
    };
    if !aci::validate::is_ac_identifier(name) {
        bail!("invalid image name {name:?} in {arg:?}: names are lower-case letters, digits and ./-_~ separators");
    }
    let mut labels = Vec::new();
    if let Some(v) = version {
        if v.is_empty() {
            bail!("invalid image string {arg:?}: empty version");
        }
        labels.push(Label {
            name: "version".into(),
            value: v.into(),
        });
    }
    for part in parts {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| anyhow!("invalid label {part:?} in image {arg:?}: use name=value"))?;
        if labels.iter().any(|l: &Label| l.name == k) {
            bail!("invalid image string {arg:?}: label {k} given twice");
        }
        labels.push(Label {
            name: k.into(),
            value: v.into(),
        });
    }
    Ok(ImageArg::Name {
        name: name.to_string(),
        labels,
    })
}

/// A local image's signature file: `.aci` replaced by `.aci.asc` (or `.aci.asc` appended).
fn asc_path(aci: &Path) -> PathBuf {
    let s = aci.as_os_str().to_string_lossy();
    PathBuf::from(format!("{}.aci.asc", s.strip_suffix(".aci").unwrap_or(&s)))
}

/// The host's appc os and arch labels.
pub fn host_os_arch() -> (&'static str, &'static str) {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "i386",
        "aarch64" => "aarch64",
        "powerpc64" => "ppc64le",
        other => other,
    };
    ("linux", arch)
}

/// Resolves and fetches image arguments into the store.
pub struct Fetcher<'a> {
    pub store: &'a Store,
    pub globals: &'a Globals,
    pub policy: PullPolicy,
}

impl Fetcher<'_> {
    /// Makes `arg` available in the store and returns its key.
    pub fn fetch(&self, arg: &str, signature: Option<&str>) -> Result<ImageKey> {
        match classify(arg)? {
            ImageArg::Hash(h) => self.store.resolve_id(&h).map_err(Into::into),
            ImageArg::File(path) => self.import_file(&path, signature),
            ImageArg::Http(url) => self.fetch_url(&url, signature),
            ImageArg::Docker(reference) => self.fetch_docker(arg, &reference),
            ImageArg::Name { name, labels } => self.by_name(arg, &name, labels, signature),
        }
    }

    fn by_name(
        &self,
        arg: &str,
        name: &str,
        mut labels: Vec<Label>,
        signature: Option<&str>,
    ) -> Result<ImageKey> {
        let (os, arch) = host_os_arch();
        for (k, v) in [("os", os), ("arch", arch)] {
            if !labels.iter().any(|l| l.name == k) {
                labels.push(Label {
                    name: k.into(),
                    value: v.into(),
                });
            }
        }
        if self.policy != PullPolicy::Update {
            if let Some(info) = self.store.find_by_name(name, &labels)? {
                self.debug(&format!(
                    "using image from local store for image name {arg}"
                ));
                return Ok(info.image_key());
            }
        }
        if self.policy == PullPolicy::Never {
            bail!("unable to fetch image from image name {arg:?}: either image was not found in the store or store was disabled and fetching from remote yielded nothing or it was disabled");
        }
        self.discover_and_fetch(name, &labels, signature)
            .with_context(|| format!("unable to fetch image {arg:?}"))
    }

    /// Imports a local ACI. Files are always imported, whatever the pull policy.
    pub fn import_file(&self, path: &Path, signature: Option<&str>) -> Result<ImageKey> {
        let abs = if path.is_absolute() {
            path.to_path_buf()
        } else {
            std::env::current_dir()
                .context("cannot get the current directory")?
                .join(path)
        };
        self.debug(&format!("using image from file {}", abs.display()));
        let mut file = File::open(&abs)
            .with_context(|| format!("open {}", abs.display()))
            .context("error opening ACI file")?;
        if self.keystore().is_some() {
            let asc = signature
                .map(PathBuf::from)
                .unwrap_or_else(|| asc_path(&abs));
            self.verify_file(&mut file, &asc)?;
        }
        let opts = ImportOptions {
            url: Some(format!("file://{}", abs.display())),
            render: true,
            ..ImportOptions::default()
        };
        let info = self
            .store
            .import(&mut file, &opts)
            .with_context(|| format!("cannot import {}", abs.display()))?;
        Ok(info.image_key())
    }

    /// Verifies a local image (such as a stage1 outside the trusted locations) against
    /// `<image>.aci.asc`, unless `--insecure-options=image`.
    pub fn check_signature(&self, aci: &Path, signature: Option<&str>) -> Result<()> {
        if self.keystore().is_none() {
            return Ok(());
        }
        let mut file = File::open(aci)
            .with_context(|| format!("open {}", aci.display()))
            .context("error opening ACI file")?;
        let asc = signature
            .map(PathBuf::from)
            .unwrap_or_else(|| asc_path(aci));
        self.verify_file(&mut file, &asc)
    }

    fn debug(&self, msg: &str) {
        if self.globals.debug {
            eprintln!("image: {msg}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_follows_rkt() {
        let h = format!("sha512-{}", "a".repeat(32));
        assert_eq!(classify(&h).unwrap(), ImageArg::Hash(h.clone()));
        assert_eq!(
            classify("file:///tmp/x.aci").unwrap(),
            ImageArg::File("/tmp/x.aci".into())
        );
        assert_eq!(
            classify("/abs/app.aci").unwrap(),
            ImageArg::File("/abs/app.aci".into())
        );
        assert_eq!(
            classify("./app.aci").unwrap(),
            ImageArg::File("./app.aci".into())
        );
        assert!(matches!(
            classify("https://e.com/x.aci").unwrap(),
            ImageArg::Http(_)
        ));
        assert!(matches!(
            classify("docker://busybox").unwrap(),
            ImageArg::Docker(_)
        ));
        assert!(matches!(
            classify("docker:busybox").unwrap(),
            ImageArg::Docker(_)
        ));
        match classify("coreos.com/etcd:v2.0.0,os=linux").unwrap() {
            ImageArg::Name { name, labels } => {
                assert_eq!(name, "coreos.com/etcd");
                assert_eq!(
                    labels[0],
                    Label {
                        name: "version".into(),
                        value: "v2.0.0".into()
                    }
                );
                assert_eq!(labels[1].name, "os");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(
            classify("example.com/app1").unwrap(),
            ImageArg::Name { .. }
        ));
    }

    #[test]
    fn bad_names_are_errors() {
        assert!(classify("Example.com/App").is_err());
        assert!(classify("example.com/app,os").is_err());
        assert!(classify("example.com/app:").is_err());
    }
}
