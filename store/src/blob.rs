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
    hasher: Sha512,
}

impl Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

impl BlobReader {
    /// Drains what is left and checks the SHA-512 of everything read against the key.
    pub fn finish(mut self) -> Result<()> {
        io::copy(&mut self, &mut io::sink())
            .map_err(|e| StoreError::read("read blob of", Path::new(self.key.as_str()), e))?;
        let actual = format!("sha512-{}", to_hex(&self.hasher.finalize()));
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
        let inner = LimitedDecompressor::new(BufReader::with_capacity(BUF_SIZE, file), self.limits)
            .map_err(|e| StoreError::io("decompress blob of", &self.image_dir(key), e))?;
        Ok(BlobReader {
            key: key.clone(),
            inner,
            hasher: Sha512::new(),
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

    /// One pass of [`Store::read_verified_file`]: copy, then read to the end and verify.
    fn copy_verified(
        &self,
        key: &ImageKey,
        path: &str,
        out: &mut dyn Write,
        max_size: u64,
    ) -> Result<RootfsFile> {
        let mut blob = self.open_blob(key)?;
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
        Ok(found)
    }
}
