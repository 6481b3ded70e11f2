//! Global options, read once from the parsed command line.
use std::path::{Path, PathBuf};

use aci::archive::Limits;
use anyhow::{Context, Result};
use store::Store;

use remote::keystore::Keystore;

use crate::cli::{GlobalArgs, Insecure, DEFAULT_DIR, DEFAULT_LOCAL_CONFIG, DEFAULT_SYSTEM_CONFIG};
use crate::config::Config;

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
        let mut globals = Globals {
            dir: PathBuf::new(),
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
        };
        // As rkt: `--dir`, else `paths.d`'s data directory, else the default.
        let dir = match &g.dir {
            Some(d) => d.clone(),
            None => globals
                .config()?
                .data_dir
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DIR)),
        };
        globals.dir = absolute(&dir)?;
        Ok(globals)
    }

    /// The configuration directories in rkt's order: system, local, then user.
    pub fn config_dirs(&self) -> Vec<&Path> {
        let mut dirs = vec![self.system_config.as_path(), self.local_config.as_path()];
        if let Some(user) = &self.user_config {
            dirs.push(user);
        }
        dirs
    }

    /// The merged configuration (read when asked: most commands need none of it).
    pub fn config(&self) -> Result<Config> {
        Config::load(&self.config_dirs()).context("cannot get configuration")
    }

    /// The keystores under `--system-config` and `--local-config`.
    pub fn keystore(&self) -> Keystore {
        Keystore::new(&self.system_config, &self.local_config)
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
