//! The image index: one `info.json` record per image, next to its blob and manifest.
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use aci::schema::{ImageManifest, Label};
use serde::{Deserialize, Serialize};

use crate::key::{hash_hex, too_short};
use crate::{atomic, ImageKey, Result, Store, StoreError};

const INFO_FILE: &str = "info.json";
const MANIFEST_FILE: &str = "manifest";

/// What the store knows about one image.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ImageInfo {
    /// `sha512-` + 64 hex digits.
    pub key: String,
    /// The full image ID (`sha512-` + 128 hex digits) as computed at import.
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub labels: Vec<Label>,
    /// Nanoseconds since the Unix epoch of the latest import (fetching the image again counts).
    pub import_time: i64,
    pub last_used: i64,
    /// Bytes of the stored blob (as fetched, possibly compressed).
    pub size: u64,
    /// Size of the uncompressed tar (what `rkt image export` writes, and what rkt, which
    /// stores blobs uncompressed, counts as the image's size).
    pub tar_size: u64,
    /// Compression of the stored blob.
    pub compression: String,
    /// Where the image was fetched from (`file://...`, `https://...`, `docker://...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Fetched without a version label (discovery "latest" pattern).
    #[serde(default)]
    pub latest: bool,
    /// Size, mtime and inode of the source file when it was imported, so an unchanged local
    /// file (such as the default stage1 image) is recognised without hashing it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_stamp: Option<String>,
}

impl ImageInfo {
    pub fn image_key(&self) -> ImageKey {
        ImageKey::parse(&self.key).expect("bug: store records hold valid keys")
    }

    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|l| l.name == name)
            .map(|l| l.value.as_str())
    }

    /// `name:version` when the image has a version label, else the name (as `rkt image list`).
    pub fn display_name(&self) -> String {
        match self.label("version") {
            Some(v) => format!("{}:{v}", self.name),
            None => self.name.clone(),
        }
    }
}

pub(crate) fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

pub(crate) fn write_record(image_dir: &Path, info: &ImageInfo) -> Result<()> {
    let json = serde_json::to_vec_pretty(info).expect("bug: ImageInfo always serialises");
    atomic::write_file(&image_dir.join(INFO_FILE), &json)
}

pub(crate) fn write_manifest(image_dir: &Path, bytes: &[u8]) -> Result<()> {
    let path = image_dir.join(MANIFEST_FILE);
    std::fs::write(&path, bytes).map_err(|e| StoreError::io("write", &path, e))
}

impl Store {
    /// The record of an image, if it is in the store.
    pub fn image_info(&self, key: &ImageKey) -> Result<Option<ImageInfo>> {
        let path = self.image_dir(key).join(INFO_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::io("read", &path, e)),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StoreError::BadRecord(key.clone(), e))
    }

    /// Every image in the store, in no particular order. Unreadable records are skipped.
    pub fn images(&self) -> Result<Vec<ImageInfo>> {
        let dir = self.images_dir();
        let entries =
            std::fs::read_dir(&dir).map_err(|e| StoreError::io("read directory", &dir, e))?;
        let mut images = Vec::new();
        for entry in entries.flatten() {
            let Some(key) = entry
                .file_name()
                .to_str()
                .and_then(|n| ImageKey::parse(n).ok())
            else {
                continue;
            };
            if let Ok(Some(info)) = self.image_info(&key) {
                images.push(info);
            }
        }
        Ok(images)
    }

    /// The stored manifest bytes of an image, exactly as found in the ACI.
    pub fn manifest_bytes(&self, key: &ImageKey) -> Result<Vec<u8>> {
        let path = self.image_dir(key).join(MANIFEST_FILE);
        std::fs::read(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => StoreError::ImageNotFound(key.to_string()),
            _ => StoreError::io("read", &path, e),
        })
    }

    /// The parsed manifest of an image.
    pub fn manifest(&self, key: &ImageKey) -> Result<ImageManifest> {
        let bytes = self.manifest_bytes(key)?;
        ImageManifest::from_slice(&bytes).map_err(|source| StoreError::BadManifest {
            key: key.clone(),
            source,
        })
    }

    /// Resolves an image ID or unambiguous prefix (`sha512-` + at least 2 hex digits).
    pub fn resolve_id(&self, id: &str) -> Result<ImageKey> {
        if too_short(id) {
            return Err(StoreError::IdTooShort(id.to_string()));
        }
        let hex = hash_hex(id).ok_or_else(|| StoreError::BadImageId(id.to_string()))?;
        let wanted = format!("sha512-{}", &hex[..hex.len().min(64)]);
        let dir = self.images_dir();
        let entries =
            std::fs::read_dir(&dir).map_err(|e| StoreError::io("read directory", &dir, e))?;
        let mut found: Vec<ImageKey> = entries
            .flatten()
            .filter_map(|e| e.file_name().to_str().and_then(|n| ImageKey::parse(n).ok()))
            .filter(|k| k.as_str().starts_with(&wanted))
            .filter(|k| self.image_dir(k).join(INFO_FILE).exists())
            .collect();
        match found.len() {
            0 => Err(StoreError::ImageNotFound(id.to_string())),
            1 => Ok(found.remove(0)),
            count => Err(StoreError::AmbiguousImage {
                prefix: id.to_string(),
                count,
            }),
        }
    }

    /// Finds the image rkt would pick for `name` carrying every label in `labels`: without a
    /// requested version, images fetched as "latest" win; ties go to the newest import.
    pub fn find_by_name(&self, name: &str, labels: &[Label]) -> Result<Option<ImageInfo>> {
        let version_requested = labels.iter().any(|l| l.name == "version");
        let mut best: Option<ImageInfo> = None;
        for info in self.images()?.into_iter().filter(|i| i.name == name) {
            let has_all = labels
                .iter()
                .all(|want| info.labels.iter().any(|l| l == want));
            if !has_all {
                continue;
            }
            best = Some(match best {
                None => info,
                Some(cur) => {
                    if !version_requested && cur.latest != info.latest {
                        if info.latest {
                            info
                        } else {
                            cur
                        }
                    } else if info.import_time > cur.import_time {
                        info
                    } else {
                        cur
                    }
                }
            });
        }
        Ok(best)
    }

    /// The newest image fetched from `url`.
    pub fn find_by_url(&self, url: &str) -> Result<Option<ImageInfo>> {
        Ok(self
            .images()?
            .into_iter()
            .filter(|i| i.url.as_deref() == Some(url))
            .max_by_key(|i| i.import_time))
    }

    /// The image imported from `url` when the source file looked exactly like `stamp`.
    pub fn find_by_source(&self, url: &str, stamp: &str) -> Result<Option<ImageInfo>> {
        Ok(self
            .images()?
            .into_iter()
            .filter(|i| i.url.as_deref() == Some(url) && i.source_stamp.as_deref() == Some(stamp))
            .max_by_key(|i| i.import_time))
    }

    /// Records that an image was just used (by `rkt run`/`prepare`). Atomic but not synced:
    /// losing a last-used time in a crash is harmless, and `rkt run` should not wait on disks.
    pub fn touch_last_used(&self, key: &ImageKey) -> Result<()> {
        if let Some(mut info) = self.image_info(key)? {
            info.last_used = now_nanos();
            let json = serde_json::to_vec_pretty(&info).expect("bug: ImageInfo always serialises");
            atomic::replace_file(&self.image_dir(key).join(INFO_FILE), &json)?;
        }
        Ok(())
    }

    /// Removes an image: its record, blob and manifest disappear at once (one rename), then the
    /// leftovers are deleted. Trees are removed by [`Store::gc_trees`].
    pub fn remove_image(&self, key: &ImageKey) -> Result<()> {
        let dir = self.image_dir(key);
        if !dir.exists() {
            return Err(StoreError::ImageNotFound(key.to_string()));
        }
        let work = crate::workdir::WorkDir::create(self, "remove")?;
        let trash = work.path().join("image");
        std::fs::rename(&dir, &trash).map_err(|e| StoreError::io("remove", &dir, e))?;
        atomic::sync_dir(&self.images_dir())?;
        // Its commit lock goes with it, unless an import of the same image holds it now.
        crate::StoreLock::remove_unused(&self.entry_lock_path(key.as_str()))?;
        Ok(())
    }
}
