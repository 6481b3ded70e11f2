//! Global options, read once from the parsed command line.
use std::path::{Path, PathBuf};

use aci::archive::Limits;
use anyhow::{Context, Result};
use store::Store;

use crate::cli::{GlobalArgs, Insecure, DEFAULT_DIR, DEFAULT_LOCAL_CONFIG, DEFAULT_SYSTEM_CONFIG};

#[derive(Debug, Clone)]
pub struct Globals {
    pub dir: PathBuf,
    pub debug: bool,
    pub insecure: Insecure,
    pub system_config: PathBuf,
    pub local_config: PathBuf,
    pub user_config: Option<PathBuf>,
    pub trust_keys_from_https: bool,
    /// `--image-size-limit` and `--image-expansion-limit` over the store's defaults.
    pub limits: Limits,
}

impl Globals {
    pub fn from_args(g: &GlobalArgs) -> Result<Globals> {
        Ok(Globals {
            dir: absolute(g.dir.as_deref().unwrap_or(Path::new(DEFAULT_DIR)))?,
            debug: g.debug.unwrap_or(false),
            insecure: g.insecure_options.unwrap_or_default(),
            system_config: absolute(
                g.system_config
                    .as_deref()
                    .unwrap_or(Path::new(DEFAULT_SYSTEM_CONFIG)),
            )?,
            local_config: absolute(
                g.local_config
                    .as_deref()
                    .unwrap_or(Path::new(DEFAULT_LOCAL_CONFIG)),
            )?,
            user_config: g.user_config.as_deref().map(absolute).transpose()?,
            trust_keys_from_https: g.trust_keys_from_https.unwrap_or(false),
            limits: Limits {
                max_rendered_size: g
                    .image_size_limit
                    .unwrap_or(Limits::default().max_rendered_size),
                max_expansion_ratio: g
                    .image_expansion_limit
                    .unwrap_or(Limits::default().max_expansion_ratio),
                ..Limits::default()
            },
        })
    }

    /// What the accepted but not yet effective global options change: nothing, said once on
    /// stderr so that none is silently ignored. rkt reads configuration files (paths.d,
    /// stage1.d, auth.d, docker.d) from the system and user directories and trusts keys for
    /// remote images; this rkt has no remote images yet (only `--local-config` reaches stage1).
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (flag, dir) in [
            ("--system-config", Some(&self.system_config)),
            ("--user-config", self.user_config.as_ref()),
        ] {
            let Some(dir) = dir else { continue };
            let kinds: Vec<&str> = ["paths.d", "stage1.d", "auth.d", "docker.d"]
                .into_iter()
                .filter(|k| dir.join(k).is_dir())
                .collect();
            if !kinds.is_empty() {
                out.push(format!(
                    "{flag}: the configuration in {} ({}) is not read by this rkt yet",
                    dir.display(),
                    kinds.join(", ")
                ));
            }
        }
        if self.trust_keys_from_https {
            out.push(
                "--trust-keys-from-https has no effect: this rkt fetches no remote images or keys yet"
                    .into(),
            );
        }
        out
    }

    /// Opens the image store under `--dir` with the image limits of the command line.
    pub fn open_store(&self) -> Result<Store> {
        let mut store = Store::open(&self.dir).context("cannot open store")?;
        store.set_limits(self.limits);
        Ok(store)
    }
}

/// Absolute form of a directory flag, with symlinks resolved when it exists (as rkt's absDir).
fn absolute(p: &Path) -> Result<PathBuf> {
    if let Ok(real) = std::fs::canonicalize(p) {
        return Ok(real);
    }
    if p.is_absolute() {
        return Ok(p.to_path_buf());
    }
    let cwd = std::env::current_dir().context("cannot get the current directory")?;
    Ok(cwd.join(p))
}
