//! Finding the stage1 image: the `--stage1-*` flags, the default image next to `rkt` or in
//! the stage1 images directory (docs/stage-contract.md, "Choosing a stage1").
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use store::{ImageKey, ImportOptions, Store};

use crate::contract::DEFAULT_STAGE1_FILE;
use crate::image::{Fetcher, ImageArg};

/// Where the stage1 image comes from (`--stage1-*`, at most one).
#[derive(Debug, Clone, PartialEq)]
pub enum Stage1Source {
    Url(String),
    Path(PathBuf),
    Name(String),
    Hash(String),
    FromDir(String),
    Default,
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
            .with_context(|| format!("could not resolve the stage1 image {h:?}")),
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
            // paths.d's stage1-images replaces the directory; only the build-time one is
            // trusted without a signature (as rkt).
            let dir = fetcher
                .globals
                .config()?
                .stage1_images_dir
                .unwrap_or_else(images_dir);
            import_path(fetcher, &dir.join(name))
        }
        Stage1Source::Path(p) => import_path(fetcher, p),
        Stage1Source::Url(u) => match crate::image::classify(u)? {
            ImageArg::File(p) => import_path(fetcher, &p),
            _ => fetcher
                .fetch(u, None)
                .context("failed to fetch stage1 image"),
        },
        Stage1Source::Default => {
            if let Some(key) = from_config(fetcher)? {
                return Ok(key);
            }
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

/// The stage1 that `stage1.d` names: in the store by name and version (unless the version
/// ends in `-dirty`), else from its location (a file, or a URL fetched and verified like any
/// image). `None` when the configuration names no stage1.
fn from_config(fetcher: &Fetcher<'_>) -> Result<Option<ImageKey>> {
    let config = fetcher.globals.config()?;
    if let Some((name, version)) = &config.stage1_name {
        if !version.ends_with("-dirty") {
            let labels = [aci::schema::Label {
                name: "version".into(),
                value: version.clone(),
            }];
            if let Some(info) = fetcher.store.find_by_name(name, &labels)? {
                return Ok(Some(info.image_key()));
            }
        }
    }
    // Without a location, the built-in default location is next (as rkt).
    let Some(location) = &config.stage1_location else {
        return Ok(None);
    };
    let key = if location.starts_with('/') {
        import_path(fetcher, Path::new(location))
    } else {
        fetcher.fetch(location, None)
    };
    key.with_context(|| {
        format!("failed to fetch the stage1 image configured in stage1.d ({location})")
    })
    .map(Some)
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
