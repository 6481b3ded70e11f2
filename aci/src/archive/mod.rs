//! ACI archives: compression detection, image IDs, reading with validation and confined
//! extraction, path whitelists, and a deterministic builder.
use std::fmt;
use std::io::{self, Read};
use std::path::Path;

use crate::schema::ImageManifest;
use crate::AciError;

mod build;
mod extract;
mod limits;
mod member;
mod peek;
mod pipeline;
mod read;
mod spares;
mod sparse;
mod whitelist;

#[cfg(test)]
mod bomb_tests;
#[cfg(test)]
mod hostile_tests;
#[cfg(test)]
mod pipeline_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod testutil;

pub use build::{AciBuilder, MAX_TREE_DEPTH};
pub use limits::{
    LimitExceeded, LimitedDecompressor, Limits, DEFAULT_EXPANSION_FLOOR,
    DEFAULT_MAX_EXPANSION_RATIO, DEFAULT_MAX_RENDERED_SIZE,
};
pub use member::{copy_rootfs_file, copy_rootfs_files, rootfs_member_path, RootfsFile, RootfsSink};
pub use peek::peek_manifest;
pub use read::read_aci;
pub use whitelist::apply_path_whitelist;

/// Read and copy buffer size: large enough that decompression, hashing and writing run in
/// big chunks.
pub(crate) const BUF_SIZE: usize = 256 * 1024;

/// Most bytes accepted after the end of an archive, in two places:
/// - [`read_aci`]: decompressed bytes after the tar end-of-archive marker's first zero block.
///   They must all be zero (record padding: GNU tar pads to 10240 bytes, our [`AciBuilder`]
///   writes the 1024-byte end marker only) and are hashed into the image ID.
/// - [`drain_trailing`]: *compressed* input left after [`read_aci`] returns, which a caller
///   that keeps the whole fetched file (the store) reads to the end. After a successful
///   [`read_aci`] this is normally nothing, since the decompressors read to the end of input.
///
/// The bound keeps an endless input (`rkt fetch /dev/zero`) from being read forever.
pub const MAX_TRAILING_BYTES: u64 = 1 << 20;

/// Reads `input` to its end, accepting at most [`MAX_TRAILING_BYTES`] (of any content), and
/// returns how many bytes were read. For the compressed input left after [`read_aci`]
/// returns; more is [`AciError::TrailingTooLong`], a read error is [`AciError::Read`].
pub fn drain_trailing<R: Read + ?Sized>(input: &mut R) -> Result<u64, AciError> {
    let mut limited = input.take(MAX_TRAILING_BYTES + 1);
    let n = io::copy(&mut limited, &mut io::sink()).map_err(AciError::Read)?;
    if n > MAX_TRAILING_BYTES {
        return Err(AciError::TrailingTooLong {
            max: MAX_TRAILING_BYTES,
        });
    }
    Ok(n)
}

/// Compression of an ACI file, detected from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    None,
    Gzip,
    Bzip2,
    Xz,
    Zstd,
}

impl Compression {
    /// Detects by magic number; anything unrecognised is taken as a plain tar.
    pub fn detect(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(b"BZh") {
            Compression::Bzip2
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
            Compression::Xz
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    /// `none`, `gzip`, `bzip2`, `xz` or `zstd`.
    pub fn name(&self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Bzip2 => "bzip2",
            Compression::Xz => "xz",
            Compression::Zstd => "zstd",
        }
    }

    /// The inverse of [`Compression::name`].
    pub fn from_name(name: &str) -> Option<Compression> {
        [
            Compression::None,
            Compression::Gzip,
            Compression::Bzip2,
            Compression::Xz,
            Compression::Zstd,
        ]
        .into_iter()
        .find(|c| c.name() == name)
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An appc image ID: `sha512-` and the 128 hex digits of the SHA-512 of the uncompressed tar.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageId(String);

const SHA512_PREFIX: &str = "sha512-";

impl ImageId {
    /// From a raw 64-byte SHA-512 digest.
    pub fn from_digest(d: &[u8]) -> ImageId {
        let mut s = String::with_capacity(SHA512_PREFIX.len() + d.len() * 2);
        s.push_str(SHA512_PREFIX);
        for b in d {
            s.push_str(&format!("{b:02x}"));
        }
        ImageId(s)
    }

    /// Accepts a full ID (`sha512-` and 128 lower-case hex digits).
    pub fn parse(s: &str) -> Option<ImageId> {
        let hex = s.strip_prefix(SHA512_PREFIX)?;
        (hex.len() == 128
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        .then(|| ImageId(s.to_string()))
    }

    pub fn full(&self) -> &str {
        &self.0
    }

    /// `sha512-` and the first 64 hex digits: the store key (rkt truncates IDs to this).
    pub fn key(&self) -> String {
        self.0[..SHA512_PREFIX.len() + 64].to_string()
    }

    /// `sha512-` and the first 32 hex digits: what `rkt fetch` prints.
    pub fn short(&self) -> String {
        self.0[..SHA512_PREFIX.len() + 32].to_string()
    }
}

impl fmt::Display for ImageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How [`read_aci`] treats the archive.
#[derive(Debug, Clone)]
pub struct ReadOptions<'a> {
    /// Existing directory to extract into; `None` only validates and hashes.
    pub extract_to: Option<&'a Path>,
    /// Extract the contents of `rootfs/` directly into `extract_to` (no `manifest` file).
    pub rootfs_only: bool,
    /// Later entries (and this archive) replace what exists, for rendering an image over its
    /// dependencies; duplicate entries are then allowed too.
    pub overwrite: bool,
    /// Largest accepted manifest, in bytes.
    pub max_manifest_size: usize,
    /// What reading the image may cost (rendered size, expansion ratio).
    pub limits: Limits,
    /// Apparent bytes of regular files already rendered into the target by earlier layers,
    /// counted against [`Limits::max_rendered_size`] with this archive's.
    pub rendered_before: u64,
}

impl Default for ReadOptions<'_> {
    fn default() -> Self {
        ReadOptions {
            extract_to: None,
            rootfs_only: false,
            overwrite: false,
            max_manifest_size: 1 << 20,
            limits: Limits::default(),
            rendered_before: 0,
        }
    }
}

/// What [`read_aci`] learned about an image.
#[derive(Debug, Clone)]
pub struct AciSummary {
    pub id: ImageId,
    pub manifest: ImageManifest,
    /// The manifest exactly as stored in the archive.
    pub manifest_bytes: Vec<u8>,
    /// Size of the uncompressed tar stream, including its end padding (at most
    /// [`MAX_TRAILING_BYTES`] after the end marker's first block).
    pub tar_size: u64,
    pub compression: Compression,
    /// Apparent bytes of this archive's regular files (see [`Limits::max_rendered_size`]).
    pub rendered_size: u64,
}

#[cfg(test)]
mod unit_tests {
    use super::*;

    #[test]
    fn detection() {
        assert_eq!(Compression::detect(&[0x1f, 0x8b, 8]), Compression::Gzip);
        assert_eq!(Compression::detect(b"BZh91AY"), Compression::Bzip2);
        assert_eq!(
            Compression::detect(&[0xfd, b'7', b'z', b'X', b'Z', 0]),
            Compression::Xz
        );
        assert_eq!(
            Compression::detect(&[0x28, 0xb5, 0x2f, 0xfd, 0]),
            Compression::Zstd
        );
        assert_eq!(Compression::detect(b"manifest"), Compression::None);
        assert_eq!(Compression::detect(b""), Compression::None);
        for c in ["none", "gzip", "bzip2", "xz", "zstd"] {
            assert_eq!(Compression::from_name(c).unwrap().name(), c);
        }
        assert_eq!(Compression::from_name("lz4"), None);
    }

    #[test]
    fn image_ids() {
        let id = ImageId::from_digest(&[0xab; 64]);
        assert_eq!(id.full().len(), 7 + 128);
        assert!(id.full().starts_with("sha512-abab"));
        assert_eq!(id.key().len(), 7 + 64);
        assert_eq!(id.short().len(), 7 + 32);
        assert_eq!(ImageId::parse(id.full()), Some(id.clone()));
        assert_eq!(ImageId::parse(&id.key()), None);
        assert_eq!(id.to_string(), id.full());
    }

    #[test]
    fn decompressor_on_short_input() {
        let mut r = LimitedDecompressor::new(&b"ab"[..], Limits::default()).unwrap();
        assert_eq!(r.compression(), Compression::None);
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        assert_eq!(s, "ab");
    }
}
