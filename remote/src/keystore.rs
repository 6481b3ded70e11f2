//! rkt's keystore of trusted signing keys (docs/cli.md, "rkt trust"): under the system and
//! local configuration directories, `trustedkeys/root.d/<fingerprint>` for keys trusted for
//! every image and `trustedkeys/prefix.d/<prefix>/<fingerprint>` for keys trusted for names
//! under a prefix (the prefix is not escaped: `prefix.d/coreos.com/etcd/<fingerprint>`).
//! A key trusted for a prefix also applies to every name below it. A local file overrides the
//! system file of the same name, and an empty local file masks it.
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::openpgp::{KeyError, PublicKey};

pub const TRUSTED_KEYS_DIR: &str = "trustedkeys";

#[derive(Debug, thiserror::Error)]
pub enum KeystoreError {
    #[error("invalid prefix {0:?}: prefixes are image names (lower-case letters, digits and -._~/ separators)")]
    BadPrefix(String),
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Key { path: PathBuf, source: KeyError },
    #[error("fingerprint mismatch: {file:?}:{fingerprint:?}")]
    FingerprintMismatch { file: String, fingerprint: String },
}

/// The system and local keystores.
#[derive(Debug, Clone)]
pub struct Keystore {
    system: PathBuf,
    local: PathBuf,
}

impl Keystore {
    /// The keystores under `--system-config` and `--local-config`.
    pub fn new(system_config: &Path, local_config: &Path) -> Keystore {
        Keystore {
            system: system_config.join(TRUSTED_KEYS_DIR),
            local: local_config.join(TRUSTED_KEYS_DIR),
        }
    }

    /// The keys trusted for image `name`: root keys, then keys of every prefix from the name's
    /// first component down to the name itself; system first, local overriding.
    pub fn keyring(&self, name: &str) -> Result<Vec<PublicKey>, KeystoreError> {
        check_prefix(name)?;
        let mut dirs = Vec::new();
        for base in [&self.system, &self.local] {
            dirs.push((base.join("root.d"), base == &self.local));
        }
        for base in [&self.system, &self.local] {
            for prefix in ancestors(name).into_iter().rev() {
                dirs.push((base.join("prefix.d").join(prefix), base == &self.local));
            }
        }
        let mut trusted: BTreeMap<String, PublicKey> = BTreeMap::new();
        for (dir, _) in dirs {
            for (path, size) in key_files(&dir)? {
                let file = file_name(&path);
                if size == 0 {
                    trusted.remove(&file);
                    continue;
                }
                let key = read_key(&path)?;
                if key.fingerprint_hex() != file {
                    return Err(KeystoreError::FingerprintMismatch {
                        file,
                        fingerprint: key.fingerprint_hex(),
                    });
                }
                trusted.insert(file, key);
            }
        }
        Ok(trusted.into_values().collect())
    }

    /// Whether a non-empty key file exists for `name` or any prefix above it (root keys do not
    /// count): automatic key discovery happens only when none does.
    pub fn has_prefix_keys(&self, name: &str) -> Result<bool, KeystoreError> {
        check_prefix(name)?;
        for prefix in ancestors(name) {
            for base in [&self.local, &self.system] {
                let dir = base.join("prefix.d").join(prefix);
                if key_files(&dir)?.iter().any(|(_, size)| *size > 0) {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// Stores `key` in the local keystore for `prefix`; returns its path.
    pub fn store_prefix(&self, prefix: &str, key: &PublicKey) -> Result<PathBuf, KeystoreError> {
        check_prefix(prefix)?;
        store_key(&self.local.join("prefix.d").join(prefix), key)
    }

    /// Stores `key` in the local keystore as trusted for every image; returns its path.
    pub fn store_root(&self, key: &PublicKey) -> Result<PathBuf, KeystoreError> {
        store_key(&self.local.join("root.d"), key)
    }
}

/// Prefixes are appc identifiers, so they never hold `..`, empty components or a leading `/`.
fn check_prefix(prefix: &str) -> Result<(), KeystoreError> {
    let components_ok = prefix
        .split('/')
        .all(|c| !c.is_empty() && c != "." && c != "..");
    if aci::validate::is_ac_identifier(prefix) && components_ok {
        Ok(())
    } else {
        Err(KeystoreError::BadPrefix(prefix.to_string()))
    }
}

/// `a/b/c` → `["a/b/c", "a/b", "a"]`.
fn ancestors(name: &str) -> Vec<&str> {
    let mut out = vec![name];
    let mut rest = name;
    while let Some((parent, _)) = rest.rsplit_once('/') {
        out.push(parent);
        rest = parent;
    }
    out
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Regular files directly in `dir` and their sizes; a missing directory has none.
fn key_files(dir: &Path) -> Result<Vec<(PathBuf, u64)>, KeystoreError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => return Ok(Vec::new()),
        Err(source) => {
            return Err(KeystoreError::Io {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| KeystoreError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = entry.path();
        let meta = std::fs::metadata(&path).map_err(|source| KeystoreError::Io {
            path: path.clone(),
            source,
        })?;
        if meta.is_file() {
            out.push((path, meta.len()));
        }
    }
    out.sort();
    Ok(out)
}

fn read_key(path: &Path) -> Result<PublicKey, KeystoreError> {
    let bytes = std::fs::read(path).map_err(|source| KeystoreError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    PublicKey::from_armored(&bytes).map_err(|source| KeystoreError::Key {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes the key as given, 0644 in a 0755 directory, replacing any older copy at once.
fn store_key(dir: &Path, key: &PublicKey) -> Result<PathBuf, KeystoreError> {
    let write_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| KeystoreError::Write { path, source }
    };
    std::fs::create_dir_all(dir).map_err(write_err(dir))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
        .map_err(write_err(dir))?;
    let path = dir.join(key.fingerprint_hex());
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        key.fingerprint_hex(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(&tmp)?;
        f.write_all(key.armored())?;
        f.set_permissions(std::fs::Permissions::from_mode(0o644))?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(KeystoreError::Write { path, source: e });
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ancestors_go_up_to_the_first_component() {
        assert_eq!(
            ancestors("a.com/b/c"),
            vec!["a.com/b/c", "a.com/b", "a.com"]
        );
        assert_eq!(ancestors("a.com"), vec!["a.com"]);
    }

    #[test]
    fn prefixes_that_could_escape_are_refused() {
        let ks = Keystore::new(Path::new("/nonexistent/s"), Path::new("/nonexistent/l"));
        for bad in ["../etc", "a/../../b", "/abs", "a//b", ""] {
            assert!(
                matches!(ks.keyring(bad), Err(KeystoreError::BadPrefix(_))),
                "{bad}"
            );
        }
        assert!(ks.keyring("example.com/app").unwrap().is_empty());
        assert!(!ks.has_prefix_keys("example.com/app").unwrap());
    }
}
