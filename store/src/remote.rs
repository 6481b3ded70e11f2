//! What the store remembers about images fetched over HTTP(S) or from registries, keyed by the
//! URL they came from (rkt's "remote" table): the image, the `ETag` and `Cache-Control: max-age`
//! the server sent, and when it was downloaded. A record whose image was removed is ignored.
//! Downloads land in anonymous files under `cas/tmp`, so an interrupted fetch leaves nothing.
use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::index::now_nanos;
use crate::{atomic, ImageKey, Result, Store, StoreError};

const REMOTE_DIR: &str = "remote";

/// One remembered download.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RemoteRecord {
    pub url: String,
    /// The stored image the URL gave.
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// Seconds the server said the image stays fresh (0: always revalidate).
    #[serde(default)]
    pub max_age: u64,
    /// Nanoseconds since the Unix epoch of the last download or revalidation.
    pub download_time: i64,
}

impl RemoteRecord {
    pub fn new(url: &str, key: &ImageKey, etag: Option<String>, max_age: u64) -> RemoteRecord {
        RemoteRecord {
            url: url.to_string(),
            key: key.to_string(),
            etag,
            max_age,
            download_time: now_nanos(),
        }
    }

    /// Whether the server's `max-age` still covers the last download.
    pub fn is_fresh(&self) -> bool {
        let age_secs = (now_nanos() - self.download_time) / 1_000_000_000;
        self.max_age > 0 && age_secs >= 0 && (age_secs as u64) < self.max_age
    }

    pub fn image_key(&self) -> Result<ImageKey> {
        ImageKey::parse(&self.key)
    }
}

fn record_name(url: &str) -> String {
    let digest = Sha256::digest(url.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{hex}.json")
}

impl Store {
    /// The record for `url`, if its image is still in the store.
    pub fn remote(&self, url: &str) -> Result<Option<RemoteRecord>> {
        let path = self.dir().join(REMOTE_DIR).join(record_name(url));
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::io("read", &path, e)),
        };
        // A damaged record is as good as none: the image is fetched again.
        let Ok(record) = serde_json::from_slice::<RemoteRecord>(&bytes) else {
            return Ok(None);
        };
        if record.url != url {
            return Ok(None);
        }
        let Ok(key) = record.image_key() else {
            return Ok(None);
        };
        if self.image_info(&key)?.is_none() {
            return Ok(None);
        }
        Ok(Some(record))
    }

    /// Remembers (or refreshes) a download.
    pub fn write_remote(&self, record: &RemoteRecord) -> Result<()> {
        let dir = self.dir().join(REMOTE_DIR);
        std::fs::create_dir_all(&dir).map_err(|e| StoreError::io("create directory", &dir, e))?;
        let json = serde_json::to_vec_pretty(record).expect("bug: RemoteRecord always serialises");
        atomic::replace_file(&dir.join(record_name(&record.url)), &json)
    }

    /// An anonymous file in the store's temporary directory for a download: it has no name,
    /// so it vanishes when closed, whatever ends the process.
    pub fn download_file(&self) -> Result<File> {
        let tmp = self.tmp_dir();
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(rustix::fs::OFlags::TMPFILE.bits() as i32)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| StoreError::io("create a temporary file in", &tmp, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_need_their_image() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let key = ImageKey::parse(&format!("sha512-{}", "a".repeat(64))).unwrap();
        let rec = RemoteRecord::new("https://e.com/a.aci", &key, Some("\"x\"".into()), 60);
        store.write_remote(&rec).unwrap();
        // The image is not in the store: the record does not count.
        assert_eq!(store.remote("https://e.com/a.aci").unwrap(), None);
        assert!(rec.is_fresh());
        let stale = RemoteRecord { max_age: 0, ..rec };
        assert!(!stale.is_fresh());
        let mut f = store.download_file().unwrap();
        std::io::Write::write_all(&mut f, b"x").unwrap();
        assert_eq!(std::fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
    }
}
