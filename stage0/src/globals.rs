//! Global options, merged from flags given before the subcommand and those given after it.
use std::path::{Path, PathBuf};

use aci::archive::Limits;
use anyhow::{Context, Result};
use store::Store;

use crate::cli::apps::ParsedApps;
use crate::cli::flags::{parse_bool, parse_ratio, parse_size};
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

    /// Opens the image store under `--dir` with the image limits of the command line.
    pub fn open_store(&self) -> Result<Store> {
        let mut store = Store::open(&self.dir).context("cannot open store")?;
        store.set_limits(self.limits);
        Ok(store)
    }

    /// Applies global flags found among a `run`/`prepare`/`fetch` image list (the last wins).
    pub fn merge(&mut self, parsed: &ParsedApps) -> Result<()> {
        for (name, value) in &parsed.flags {
            match name.as_str() {
                "debug" => self.debug = parse_bool(value)?,
                "dir" => self.dir = absolute(Path::new(value))?,
                "insecure-options" => self.insecure = Insecure::parse(value)?,
                "system-config" => self.system_config = absolute(Path::new(value))?,
                "local-config" => self.local_config = absolute(Path::new(value))?,
                "user-config" => self.user_config = Some(absolute(Path::new(value))?),
                "trust-keys-from-https" => self.trust_keys_from_https = parse_bool(value)?,
                "image-size-limit" => self.limits.max_rendered_size = parse_size(value)?,
                "image-expansion-limit" => self.limits.max_expansion_ratio = parse_ratio(value)?,
                _ => {}
            }
        }
        Ok(())
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
