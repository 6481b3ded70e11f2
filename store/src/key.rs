//! Store keys: image keys (`sha512-` + 64 hex) and tree ids (`deps-sha512-` + 64 hex).
use std::fmt;

use sha2::{Digest, Sha512};

use crate::StoreError;

const SHA512_PREFIX: &str = "sha512-";
/// rkt keeps the first 64 hex digits of the SHA-512.
const KEY_HEX_LEN: usize = 64;

/// Key of an image in the store: `sha512-` followed by 64 lower-case hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageKey(String);

impl ImageKey {
    /// Parses a complete key; longer hashes (full SHA-512) are truncated as rkt does.
    pub fn parse(s: &str) -> Result<ImageKey, StoreError> {
        let hex = hash_hex(s).ok_or_else(|| StoreError::BadImageId(s.to_string()))?;
        if hex.len() < KEY_HEX_LEN {
            return Err(StoreError::BadImageId(s.to_string()));
        }
        Ok(ImageKey(format!("{SHA512_PREFIX}{}", &hex[..KEY_HEX_LEN])))
    }

    pub fn from_image_id(id: &aci::ImageId) -> ImageKey {
        ImageKey(id.key())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `sha512-` + 32 hex digits: what `rkt fetch` prints.
    pub fn short(&self) -> &str {
        &self.0[..SHA512_PREFIX.len() + 32]
    }

    /// `sha512-` + 12 hex digits: what `rkt image list` and `rkt list --full` print.
    pub fn list_form(&self) -> &str {
        &self.0[..SHA512_PREFIX.len() + 12]
    }
}

impl fmt::Display for ImageKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The fewest hex digits an image ID prefix may have: rkt's store refuses `sha512-` with
/// fewer as "image ID too short".
pub(crate) const MIN_ID_HEX: usize = 2;

/// Lower-cased hex digits of a `sha512-<hex>` string, if it is one (any length ≥
/// [`MIN_ID_HEX`]).
pub(crate) fn hash_hex(s: &str) -> Option<String> {
    let rest = s.strip_prefix(SHA512_PREFIX)?;
    if rest.len() < MIN_ID_HEX || !rest.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    Some(rest.to_ascii_lowercase())
}

/// Whether `s` is `sha512-` followed by fewer characters than an ID prefix needs.
pub(crate) fn too_short(s: &str) -> bool {
    s.strip_prefix(SHA512_PREFIX)
        .is_some_and(|rest| rest.chars().count() < MIN_ID_HEX)
}

/// Whether `s` looks like an image hash (`sha512-` followed by hex digits), as rkt classifies
/// image arguments.
pub fn is_image_hash(s: &str) -> bool {
    hash_hex(s).is_some()
}

/// Id of a rendered tree: derived from the keys of every image rendered into it, in order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TreeId(String);

impl TreeId {
    pub fn for_images(keys: &[ImageKey]) -> TreeId {
        let mut hasher = Sha512::new();
        for key in keys {
            hasher.update(key.as_str().as_bytes());
            hasher.update(b"\n");
        }
        let hex = to_hex(&hasher.finalize());
        TreeId(format!("deps-{SHA512_PREFIX}{}", &hex[..KEY_HEX_LEN]))
    }

    pub fn parse(s: &str) -> Option<TreeId> {
        let hex = s.strip_prefix("deps-")?.strip_prefix(SHA512_PREFIX)?;
        (hex.len() == KEY_HEX_LEN && hex.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')))
            .then(|| TreeId(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TreeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub(crate) fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_truncated_to_64_hex_digits() {
        let full = format!("sha512-{}", "ab".repeat(64));
        let key = ImageKey::parse(&full).unwrap();
        assert_eq!(key.as_str().len(), 7 + 64);
        assert_eq!(key.short().len(), 7 + 32);
        assert_eq!(key.list_form().len(), 7 + 12);
    }

    #[test]
    fn short_or_malformed_ids_are_not_keys() {
        assert!(ImageKey::parse("sha512-abcd").is_err());
        assert!(ImageKey::parse(&format!("sha256-{}", "a".repeat(64))).is_err());
        assert!(ImageKey::parse(&format!("sha512-{}", "g".repeat(64))).is_err());
        assert!(is_image_hash("sha512-ab"));
        assert!(is_image_hash("sha512-AB"));
        assert!(!is_image_hash("sha512-a"));
        assert!(!is_image_hash("example.com/app"));
        assert!(too_short("sha512-") && too_short("sha512-a"));
        assert!(!too_short("sha512-ab") && !too_short("sha512-zz"));
        assert!(!too_short("example.com/a"));
    }

    #[test]
    fn tree_ids_depend_on_every_image_and_their_order() {
        let a = ImageKey::parse(&format!("sha512-{}", "a".repeat(64))).unwrap();
        let b = ImageKey::parse(&format!("sha512-{}", "b".repeat(64))).unwrap();
        let ab = TreeId::for_images(&[a.clone(), b.clone()]);
        assert_ne!(ab, TreeId::for_images(&[b, a.clone()]));
        assert_ne!(ab, TreeId::for_images(&[a]));
        assert_eq!(TreeId::parse(ab.as_str()), Some(ab));
    }
}
