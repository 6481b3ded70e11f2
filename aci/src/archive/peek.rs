//! Reading only an image's manifest, for checks that must happen before an image is imported
//! (the name a signature is checked against, the name and labels discovery asked for).
use std::io::Read;

use super::limits::{LimitedDecompressor, Limits};
use super::read::normalize;
use crate::schema::ImageManifest;
use crate::AciError;

/// The manifest of an ACI (any compression), read from the archive up to its `manifest` entry.
/// The rest of the archive is neither read nor validated.
pub fn peek_manifest<R: Read>(input: R, limits: Limits) -> Result<ImageManifest, AciError> {
    let stream = LimitedDecompressor::new(input, limits).map_err(AciError::Read)?;
    let mut archive = tar::Archive::new(stream);
    for entry in archive.entries().map_err(AciError::Read)? {
        let mut entry = entry.map_err(AciError::Read)?;
        let raw = entry.path_bytes().into_owned();
        if normalize(&raw).as_deref() != Some(b"manifest".as_slice()) {
            continue;
        }
        let max = ReadOptionsMax::MANIFEST;
        if entry.size() > max {
            return Err(AciError::ManifestTooLarge {
                entry: "manifest".into(),
                size: entry.size(),
                max: max as usize,
            });
        }
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).map_err(AciError::Read)?;
        return ImageManifest::from_slice(&bytes).map_err(AciError::InvalidManifest);
    }
    Err(AciError::MissingManifest)
}

/// The same manifest size limit as [`super::ReadOptions`]' default.
struct ReadOptionsMax;

impl ReadOptionsMax {
    const MANIFEST: u64 = 1 << 20;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::{AciBuilder, Compression};

    #[test]
    fn the_manifest_is_read_from_a_compressed_image() {
        let manifest = ImageManifest::from_slice(
            br#"{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/peek"}"#,
        )
        .unwrap();
        let b = AciBuilder::new(Vec::new(), Compression::Gzip, &manifest).unwrap();
        let out = b.finish().unwrap();
        let m = peek_manifest(out.as_slice(), Limits::default()).unwrap();
        assert_eq!(m.name, "example.com/peek");
        assert!(matches!(
            peek_manifest(&[0u8; 1024][..], Limits::default()),
            Err(AciError::MissingManifest)
        ));
    }
}
