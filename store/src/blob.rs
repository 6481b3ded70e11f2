//! Reading stored blobs back as uncompressed ACIs, verified against their key.
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use aci::archive::{copy_rootfs_file, LimitedDecompressor, RootfsFile};
use aci::AciError;
use sha2::{Digest, Sha512};

use crate::key::to_hex;
use crate::{ImageKey, Result, Store, StoreError};

pub(crate) const BLOB_FILE: &str = "blob";
const BUF_SIZE: usize = 256 * 1024;

/// The uncompressed tar of a stored image. Call [`BlobReader::finish`] after reading to EOF to
/// learn whether the content matched its key. Reads fail once the stream expands more than the
/// store's [`crate::Limits`] allow (see [`aci::archive::LimitExceeded::from_io`]).
pub struct BlobReader {
    key: ImageKey,
    inner: LimitedDecompressor<'static>,
    /// `None` when the blob is known good (see [`Store::read_verified_file`]).
    hasher: Option<Sha512>,
}

impl Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(h) = self.hasher.as_mut() {
            h.update(&buf[..n]);
        }
        Ok(n)
    }
}

impl BlobReader {
    /// Drains what is left and checks the SHA-512 of everything read against the key.
    pub fn finish(mut self) -> Result<()> {
        let Some(_) = self.hasher else {
            return Ok(());
        };
        io::copy(&mut self, &mut io::sink())
            .map_err(|e| StoreError::read("read blob of", Path::new(self.key.as_str()), e))?;
        let hasher = self.hasher.take().expect("checked above");
        let actual = format!("sha512-{}", to_hex(&hasher.finalize()));
        if actual[..self.key.as_str().len()] != *self.key.as_str() {
            return Err(StoreError::CorruptImage {
                key: self.key,
                actual,
            });
        }
        Ok(())
    }
}

impl Store {
    /// The stored blob as fetched (possibly compressed).
    pub fn open_blob_raw(&self, key: &ImageKey) -> Result<File> {
        let path = self.image_dir(key).join(BLOB_FILE);
        File::open(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => StoreError::ImageNotFound(key.to_string()),
            _ => StoreError::io("open", &path, e),
        })
    }

    /// The image's uncompressed tar, bounded by the store's expansion limit.
    pub fn open_blob(&self, key: &ImageKey) -> Result<BlobReader> {
        let file = self.open_blob_raw(key)?;
        self.blob_reader(key, file, true)
    }

    fn blob_reader(&self, key: &ImageKey, file: File, hash: bool) -> Result<BlobReader> {
        let inner = LimitedDecompressor::new(BufReader::with_capacity(BUF_SIZE, file), self.limits)
            .map_err(|e| StoreError::io("decompress blob of", &self.image_dir(key), e))?;
        Ok(BlobReader {
            key: key.clone(),
            inner,
            hasher: hash.then(Sha512::new),
        })
    }

    /// Writes the image's uncompressed ACI (whose SHA-512 is the image ID) to `out`. With
    /// `verify`, a blob whose content no longer matches its key is an error; the caller must
    /// discard what was written.
    pub fn export(&self, key: &ImageKey, out: &mut dyn Write, verify: bool) -> Result<u64> {
        let mut blob = self.open_blob(key)?;
        let mut buf = vec![0u8; BUF_SIZE];
        let mut total = 0u64;
        loop {
            let n = blob
                .read(&mut buf)
                .map_err(|e| StoreError::read("read blob of", &self.image_dir(key), e))?;
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n])
                .map_err(|e| StoreError::io("write export of", &self.image_dir(key), e))?;
            total += n as u64;
        }
        if verify {
            blob.finish()?;
        }
        Ok(total)
    }

    /// Checks a blob against its key by reading it completely.
    pub fn verify_blob(&self, key: &ImageKey) -> Result<()> {
        self.open_blob(key)?.finish()
    }

    /// Copies the regular file `path` of the image's rootfs (`./` and leading `/` ignored) to
    /// `out`, from the stored blob, and checks the SHA-512 of the whole blob against the key.
    /// `Ok(false)` when there is no regular file at `path` (missing, a directory, a symlink); a
    /// hard link counts as its target. A file larger than `max_size` is
    /// [`StoreError::FileTooLarge`]; a blob that does not match its key is
    /// [`StoreError::CorruptImage`], and then (as on any error) the caller must discard what
    /// was written to `out`.
    pub fn read_verified_file(
        &self,
        key: &ImageKey,
        path: &str,
        out: &mut dyn Write,
        max_size: u64,
    ) -> Result<bool> {
        match self.copy_verified(key, path, out, max_size)? {
            RootfsFile::Copied => Ok(true),
            RootfsFile::NotRegular => Ok(false),
            // The target came earlier in the stream: read it again for the target, which
            // must itself be a regular file.
            RootfsFile::HardLink(target) => {
                let target = target.trim_start_matches("rootfs");
                match self.copy_verified(key, target, out, max_size)? {
                    RootfsFile::Copied => Ok(true),
                    _ => Ok(false),
                }
            }
        }
    }

    /// One pass of [`Store::read_verified_file`]: copy, then read to the end and verify —
    /// unless the blob file is, by device, inode, size, mtime and ctime, the one that was last
    /// verified in full. Userspace cannot set a ctime, so any write to the blob since then
    /// (a tampering, a repair) makes the next read hash it again. This spares `rkt run` hashing
    /// the whole stage1 image on every start.
    fn copy_verified(
        &self,
        key: &ImageKey,
        path: &str,
        out: &mut dyn Write,
        max_size: u64,
    ) -> Result<RootfsFile> {
        let file = self.open_blob_raw(key)?;
        let identity = blob_identity(&file);
        let record = self.image_dir(key).join(VERIFIED_RECORD);
        let known_good = identity.is_some() && std::fs::read_to_string(&record).ok() == identity;
        let mut blob = self.blob_reader(key, file, !known_good)?;
        let found = copy_rootfs_file(&mut blob, path, out, max_size);
        // The hash decides first: a tampered blob may also fail to parse.
        let verified = blob.finish();
        let found = match (found, verified) {
            (_, Err(e @ StoreError::CorruptImage { .. })) => return Err(e),
            (Err(AciError::MemberTooLarge { size, max, .. }), _) => {
                return Err(StoreError::FileTooLarge {
                    key: key.clone(),
                    path: PathBuf::from(path),
                    size,
                    max,
                })
            }
            (Err(e), _) => return Err(e.into()),
            (Ok(_), Err(e)) => return Err(e),
            (Ok(found), Ok(())) => found,
        };
        if let (false, Some(identity)) = (known_good, identity) {
            // Best effort: without the record the next read hashes again, nothing worse.
            let tmp = record.with_extension("tmp");
            if std::fs::write(&tmp, identity).is_ok() {
                let _ = std::fs::rename(&tmp, &record);
            }
        }
        Ok(found)
    }
}

/// In an image's directory: the identity of its blob file when it was last verified in full.
const VERIFIED_RECORD: &str = "verified";

/// Device, inode, size, mtime and ctime of a blob file, as one line.
fn blob_identity(file: &File) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let m = file.metadata().ok()?;
    Some(format!(
        "{} {} {} {}.{} {}.{}\n",
        m.dev(),
        m.ino(),
        m.size(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec()
    ))
}
