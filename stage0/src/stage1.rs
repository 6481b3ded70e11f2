//! Finding the stage1 image (REFERENCE §4.4) and executing its entrypoints (§1.2, §1.5).
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use aci::schema::ImageManifest;
use anyhow::{anyhow, bail, Context, Result};
use store::{ImageKey, ImportOptions, Store};

use crate::cli::apps::ParsedApps;
use crate::contract::{
    ANN_INTERFACE_VERSION, DEFAULT_STAGE1_FILE, LOCK_FD_ENV, STAGE1_MANIFEST, STAGE1_ROOTFS,
};
use crate::globals::Globals;
use crate::image::{Fetcher, ImageArg};
use crate::sys;

const SELECTION_FLAGS: [&str; 5] = [
    "stage1-url",
    "stage1-path",
    "stage1-name",
    "stage1-hash",
    "stage1-from-dir",
];

/// Where the stage1 image comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Stage1Source {
    Url(String),
    Path(PathBuf),
    Name(String),
    Hash(String),
    FromDir(String),
    Default,
}

/// Reads the mutually exclusive `--stage1-*` flags.
pub fn source(parsed: &ParsedApps) -> Result<Stage1Source> {
    let mut chosen: Option<(&str, String)> = None;
    for (name, value) in &parsed.flags {
        if !SELECTION_FLAGS.contains(&name.as_str()) {
            continue;
        }
        match &chosen {
            Some((prev, _)) if *prev == name.as_str() => bail!("--{name} already used"),
            Some((prev, _)) => bail!("flags --{name} and --{prev} are mutually exclusive"),
            None => {
                chosen = Some((
                    SELECTION_FLAGS
                        .iter()
                        .find(|f| **f == name.as_str())
                        .copied()
                        .unwrap_or(""),
                    value.clone(),
                ))
            }
        }
    }
    Ok(match chosen {
        None => Stage1Source::Default,
        Some(("stage1-url", v)) => Stage1Source::Url(v),
        Some(("stage1-path", v)) => Stage1Source::Path(PathBuf::from(v)),
        Some(("stage1-name", v)) => Stage1Source::Name(v),
        Some(("stage1-hash", v)) => Stage1Source::Hash(v),
        Some((_, v)) => Stage1Source::FromDir(v),
    })
}

/// The build-time stage1 images directory.
pub fn images_dir() -> PathBuf {
    PathBuf::from(env!("RKT_STAGE1_IMAGES_DIR"))
}

/// `stage1.aci` next to the running `rkt` binary.
fn next_to_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.join(DEFAULT_STAGE1_FILE))
}

/// Images in the stage1 images directory or next to `rkt` are trusted without signatures.
fn trusted_location(path: &Path) -> bool {
    let dir = images_dir();
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let path = canon(path);
    path.starts_with(canon(&dir)) || next_to_binary().map(|n| canon(&n) == path).unwrap_or(false)
}

/// Makes the stage1 image available in the store and returns its key.
pub fn resolve(fetcher: &Fetcher<'_>, src: &Stage1Source) -> Result<ImageKey> {
    match src {
        Stage1Source::Hash(h) => fetcher
            .store
            .resolve_id(h)
            .with_context(|| format!("stage1 image {h} is not in the store")),
        Stage1Source::Name(n) => fetcher
            .fetch(n, None)
            .context("failed to fetch stage1 image"),
        Stage1Source::FromDir(name) => {
            if name.is_empty() || name.contains('/') || name == "." || name == ".." {
                bail!(
                    "--stage1-from-dir takes a file name in {}, not a path: {name:?}",
                    images_dir().display()
                );
            }
            import_trusted(fetcher.store, &images_dir().join(name))
        }
        Stage1Source::Path(p) => import_path(fetcher, p),
        Stage1Source::Url(u) => match crate::image::classify(u)? {
            ImageArg::File(p) => import_path(fetcher, &p),
            _ => fetcher
                .fetch(u, None)
                .context("failed to fetch stage1 image"),
        },
        Stage1Source::Default => {
            let candidates: Vec<PathBuf> = [
                Some(images_dir().join(DEFAULT_STAGE1_FILE)),
                next_to_binary(),
            ]
            .into_iter()
            .flatten()
            .collect();
            for candidate in &candidates {
                if candidate.is_file() {
                    return import_trusted(fetcher.store, candidate);
                }
            }
            let tried: Vec<String> = candidates.iter().map(|c| c.display().to_string()).collect();
            bail!(
                "cannot find the default stage1 image (looked for {}): build it with `make` or use --stage1-{{path,url,name,hash,from-dir}}",
                tried.join(" and ")
            )
        }
    }
}

fn import_path(fetcher: &Fetcher<'_>, path: &Path) -> Result<ImageKey> {
    let abs = std::path::absolute(path)
        .with_context(|| format!("invalid stage1 path {}", path.display()))?;
    if !abs.exists() {
        bail!("stage1 image {} does not exist", abs.display());
    }
    if trusted_location(&abs) {
        return import_trusted(fetcher.store, &abs);
    }
    fetcher
        .check_signature(&abs, None)
        .context("failed to fetch stage1 image")?;
    import_trusted(fetcher.store, &abs)
}

/// Imports a stage1 file, reusing the stored copy when the file has not changed since.
fn import_trusted(store: &Store, path: &Path) -> Result<ImageKey> {
    let meta = std::fs::metadata(path)
        .with_context(|| format!("cannot read stage1 image {}", path.display()))?;
    let url = format!("file://{}", path.display());
    let stamp = format!(
        "{}:{}.{}:{}:{}",
        meta.len(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.dev(),
        meta.ino()
    );
    if let Some(info) = store.find_by_source(&url, &stamp)? {
        return Ok(info.image_key());
    }
    let mut file =
        File::open(path).with_context(|| format!("cannot open stage1 image {}", path.display()))?;
    let opts = ImportOptions {
        url: Some(url),
        render: true,
        source_stamp: Some(stamp),
        ..ImportOptions::default()
    };
    let info = store
        .import(&mut file, &opts)
        .with_context(|| format!("cannot import stage1 image {}", path.display()))?;
    Ok(info.image_key())
}

/// The stage1 manifest of a prepared pod.
pub fn pod_stage1_manifest(pod_dir: &Path) -> Result<ImageManifest> {
    let path = pod_dir.join(STAGE1_MANIFEST);
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    ImageManifest::from_slice(&bytes)
        .with_context(|| format!("invalid stage1 manifest {}", path.display()))
}

/// An entrypoint binary in the stage1 tree of the store (read-only to pods), for the
/// commands that run it after the pod started: the pod's own stage1 root is writable by it.
pub fn store_entrypoint(globals: &Globals, pod_dir: &Path, entry: &str) -> Result<PathBuf> {
    let recorded = std::fs::read_to_string(pod_dir.join(crate::contract::STAGE1_TREE_ID))
        .context("error getting stage1 treeStoreID")?;
    let tree = store::TreeId::parse(recorded.trim())
        .with_context(|| format!("invalid stage1 tree id {:?}", recorded.trim()))?;
    let store = globals.open_store()?;
    let program = store
        .tree_dir(&tree)
        .join("rootfs")
        .join(entry.trim_start_matches('/'));
    if !program.exists() {
        bail!(
            "stage1 entrypoint {entry} not found in {} (was the stage1 image removed?)",
            program.display()
        );
    }
    Ok(program)
}

/// The entrypoint named by `annotation`, relative to the stage1 rootfs.
pub fn entrypoint(manifest: &ImageManifest, annotation: &str) -> Result<String> {
    manifest
        .annotation(annotation)
        .map(str::to_string)
        .ok_or_else(|| {
            anyhow!(
                "stage1 image {} has no {annotation} annotation",
                manifest.name
            )
        })
}

/// The stage1 interface version (absent means 1).
pub fn interface_version(manifest: &ImageManifest) -> Result<u32> {
    match manifest.annotation(ANN_INTERFACE_VERSION) {
        None => Ok(1),
        Some(v) => v
            .parse()
            .map_err(|_| anyhow!("stage1 interface version {v:?} is not an integer")),
    }
}

/// Flags of the stage1 `run` entrypoint.
#[derive(Debug, Clone, Default)]
pub struct RunFlags {
    pub debug: bool,
    pub net: String,
    pub interactive: bool,
    pub local_config: PathBuf,
    pub hostname: Option<String>,
    pub dns_conf_mode: Option<String>,
    pub disable_capabilities: bool,
    pub disable_paths: bool,
    pub disable_seccomp: bool,
    pub ipc: Option<String>,
}

/// `<entrypoint> [--debug] --net=<list> [--interactive] [--local-config=<dir>] [--hostname=<h>]
/// [--disable-*] [--ipc=<m>] <uuid>`, gated by the interface version (REFERENCE §1.2).
pub fn run_argv(
    entry: &str,
    version: u32,
    flags: &RunFlags,
    uuid: &str,
    warn: &dyn Fn(&str),
) -> Vec<String> {
    let mut argv = vec![entry.to_string()];
    if flags.debug {
        argv.push("--debug".into());
    }
    argv.push(format!("--net={}", flags.net));
    if flags.interactive {
        argv.push("--interactive".into());
    }
    argv.push(format!("--local-config={}", flags.local_config.display()));
    if let Some(h) = &flags.hostname {
        if version >= 2 {
            argv.push(format!("--hostname={h}"));
        } else {
            warn("--hostname is not supported by the stage1 (interface version < 2), ignoring");
        }
    }
    if let Some(mode) = &flags.dns_conf_mode {
        if version >= 4 {
            argv.push(format!("--dns-conf-mode={mode}"));
        }
    }
    for (set, flag) in [
        (
            flags.disable_capabilities,
            "--disable-capabilities-restriction",
        ),
        (flags.disable_paths, "--disable-paths"),
        (flags.disable_seccomp, "--disable-seccomp"),
    ] {
        if set {
            if version >= 3 {
                argv.push(flag.into());
            } else {
                warn(&format!(
                    "{flag} is not supported by the stage1 (interface version < 3), ignoring"
                ));
            }
        }
    }
    if let Some(ipc) = &flags.ipc {
        if version >= 6 {
            argv.push(format!("--ipc={ipc}"));
        } else {
            warn("--ipc is not supported by the stage1 (interface version < 6), ignoring");
        }
    }
    argv.push(uuid.to_string());
    argv
}

/// Replaces rkt with the stage1 entrypoint, cwd the pod directory, handing over the pod lock.
pub fn exec(
    pod_dir: &Path,
    entry: &str,
    argv: &[String],
    lock: std::os::fd::BorrowedFd<'_>,
) -> anyhow::Error {
    let program = pod_dir
        .join(STAGE1_ROOTFS)
        .join(entry.trim_start_matches('/'));
    if let Err(e) = std::env::set_current_dir(pod_dir) {
        return anyhow::Error::new(e)
            .context(format!("cannot enter pod directory {}", pod_dir.display()));
    }
    if let Err(e) = sys::clear_cloexec(lock) {
        return e;
    }
    let mut env: Vec<(String, String)> =
        std::env::vars().filter(|(k, _)| k != LOCK_FD_ENV).collect();
    env.push((LOCK_FD_ENV.into(), lock.as_raw_fd().to_string()));
    sys::exec(&program, argv, &env)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage1_flags_are_mutually_exclusive() {
        let parsed = ParsedApps {
            flags: vec![
                ("stage1-path".into(), "/a".into()),
                ("stage1-hash".into(), "sha512-ab".into()),
            ],
            ..ParsedApps::default()
        };
        assert_eq!(
            source(&parsed).unwrap_err().to_string(),
            "flags --stage1-hash and --stage1-path are mutually exclusive"
        );
        let one = ParsedApps {
            flags: vec![("stage1-path".into(), "/a".into())],
            ..ParsedApps::default()
        };
        assert_eq!(source(&one).unwrap(), Stage1Source::Path("/a".into()));
    }

    #[test]
    fn argv_is_gated_by_interface_version() {
        let flags = RunFlags {
            net: "host".into(),
            local_config: "/etc/rkt".into(),
            hostname: Some("h".into()),
            ipc: Some("private".into()),
            ..RunFlags::default()
        };
        let warned = std::cell::RefCell::new(Vec::new());
        let warn = |m: &str| warned.borrow_mut().push(m.to_string());
        let v1 = run_argv("/init", 1, &flags, "u", &warn);
        assert_eq!(v1, ["/init", "--net=host", "--local-config=/etc/rkt", "u"]);
        assert_eq!(warned.borrow().len(), 2);
        let v6 = run_argv("/init", 6, &flags, "u", &warn);
        assert_eq!(
            v6,
            [
                "/init",
                "--net=host",
                "--local-config=/etc/rkt",
                "--hostname=h",
                "--ipc=private",
                "u"
            ]
        );
    }
}
