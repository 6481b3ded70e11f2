//! Reading stored blobs back as uncompressed ACIs, verified against their key.
use std::fs::File;
use std::io::{self, BufReader, Read, Write};

use sha2::{Digest, Sha512};

use crate::key::to_hex;
use crate::{ImageKey, Result, Store, StoreError};

pub(crate) const BLOB_FILE: &str = "blob";
const BUF_SIZE: usize = 256 * 1024;

/// The uncompressed tar of a stored image. Call [`BlobReader::finish`] after reading to EOF to
/// learn whether the content matched its key.
pub struct BlobReader {
    key: ImageKey,
    inner: Box<dyn Read>,
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
        io::copy(&mut self, &mut io::sink()).map_err(|e| {
            StoreError::io(
                "read blob of",
                &std::path::PathBuf::from(self.key.as_str()),
                e,
            )
        })?;
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

    /// The image's uncompressed tar.
    pub fn open_blob(&self, key: &ImageKey) -> Result<BlobReader> {
        let file = self.open_blob_raw(key)?;
        let (_, inner) = aci::archive::decompressor(BufReader::with_capacity(BUF_SIZE, file))
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
                .map_err(|e| StoreError::io("read blob of", &self.image_dir(key), e))?;
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
}
