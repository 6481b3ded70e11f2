//! OpenPGP public keys and detached signatures, with the `pgp` crate: what rkt needs of them
//! (fingerprints, identities, "which trusted key made this signature, and is it valid").
use std::io::Read;

use pgp::composed::{Deserializable, DetachedSignature, SignedPublicKey};
use pgp::packet::Signature;
use pgp::types::{KeyDetails, VerifyingKey};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("error reading key: {0}")]
    Parse(String),
    #[error("missing opengpg entity")]
    Empty,
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// No key in the keyring issued the signature (rkt's "openpgp: signature made by unknown
    /// entity").
    #[error("openpgp: signature made by unknown entity")]
    UnknownIssuer,
    #[error("keystore: no valid signatures found in signature file")]
    NoSignature,
    /// The signature does not match the data (the pgp crate's detail is for `--debug`).
    #[error("openpgp: invalid signature: the data does not match the signature")]
    Invalid(String),
    #[error("error reading the image: {0}")]
    Io(#[from] std::io::Error),
}

/// An armored public key as given to `rkt trust` or found in the keystore.
#[derive(Debug, Clone)]
pub struct PublicKey {
    key: SignedPublicKey,
    armored: Vec<u8>,
}

impl PublicKey {
    /// The first key of an ASCII-armored key block (rkt stores the block as given).
    pub fn from_armored(bytes: &[u8]) -> Result<PublicKey, KeyError> {
        let (mut keys, _) =
            SignedPublicKey::from_armor_many(bytes).map_err(|e| KeyError::Parse(e.to_string()))?;
        let key = keys
            .next()
            .ok_or(KeyError::Empty)?
            .map_err(|e| KeyError::Parse(e.to_string()))?;
        key.verify_bindings()
            .map_err(|e| KeyError::Parse(format!("invalid self-signature: {e}")))?;
        Ok(PublicKey {
            key,
            armored: bytes.to_vec(),
        })
    }

    pub fn armored(&self) -> &[u8] {
        &self.armored
    }

    /// Lower-case hex of the primary key's fingerprint: the key's file name in the keystore.
    pub fn fingerprint_hex(&self) -> String {
        format!("{:x}", self.key.primary_key.fingerprint())
    }

    /// The primary fingerprint grouped as GnuPG shows it (`ABCD EF01 ...  ...`).
    pub fn fingerprint_display(&self) -> String {
        group_fingerprint(self.key.primary_key.fingerprint().as_bytes())
    }

    pub fn subkey_fingerprints_display(&self) -> Vec<String> {
        self.key
            .public_subkeys
            .iter()
            .map(|s| group_fingerprint(s.key.fingerprint().as_bytes()))
            .collect()
    }

    /// The key's user IDs (`Name (comment) <email>`).
    pub fn identities(&self) -> Vec<String> {
        self.key
            .details
            .users
            .iter()
            .map(|u| String::from_utf8_lossy(u.id.id()).into_owned())
            .collect()
    }

    /// The primary key or subkey that issued `sig`, if it is one of this key's.
    fn issuer_of(&self, sig: &Signature) -> Option<&dyn VerifyingKeyDyn> {
        if issued_by(sig, &self.key.primary_key) {
            return Some(&self.key.primary_key);
        }
        self.key
            .public_subkeys
            .iter()
            .find(|s| issued_by(sig, &s.key))
            .map(|s| &s.key as &dyn VerifyingKeyDyn)
    }
}

/// Object-safe view of a key that can check a signature over a stream.
trait VerifyingKeyDyn {
    fn verify_stream(&self, sig: &Signature, data: &mut dyn Read) -> pgp::errors::Result<()>;
}

impl<K: VerifyingKey> VerifyingKeyDyn for K {
    fn verify_stream(&self, sig: &Signature, data: &mut dyn Read) -> pgp::errors::Result<()> {
        sig.verify(self, data)
    }
}

fn issued_by(sig: &Signature, key: &impl KeyDetails) -> bool {
    let fp = key.fingerprint();
    let id = key.legacy_key_id();
    sig.issuer_fingerprint().iter().any(|f| **f == fp)
        || sig.issuer_key_id().iter().any(|k| **k == id)
}

fn group_fingerprint(bytes: &[u8]) -> String {
    let mut out = String::new();
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 && i % 2 == 0 {
            out.push(' ');
            if i == bytes.len() / 2 {
                out.push(' ');
            }
        }
        out.push_str(&format!("{b:02X}"));
    }
    out
}

/// A detached signature file: armored, or binary as a fallback (as rkt reads them).
pub struct DetachedSignatures {
    sigs: Vec<Signature>,
}

impl DetachedSignatures {
    pub fn parse(bytes: &[u8]) -> Result<DetachedSignatures, VerifyError> {
        let armored = DetachedSignature::from_armor_many(bytes)
            .ok()
            .map(|(it, _)| it.filter_map(Result::ok).collect::<Vec<_>>())
            .filter(|v| !v.is_empty());
        let sigs = match armored {
            Some(s) => s,
            None => DetachedSignature::from_bytes_many(bytes)
                .map(|it| it.filter_map(Result::ok).collect())
                .unwrap_or_default(),
        };
        if sigs.is_empty() {
            return Err(VerifyError::NoSignature);
        }
        Ok(DetachedSignatures {
            sigs: sigs.into_iter().map(|d| d.signature).collect(),
        })
    }

    /// The trusted key that issued one of the signatures: checked before the signed data is
    /// downloaded, so an untrusted image is refused without transferring it.
    pub fn signer<'k>(&self, keyring: &'k [PublicKey]) -> Result<&'k PublicKey, VerifyError> {
        self.find(keyring).map(|(k, _)| k)
    }

    fn find<'k>(
        &self,
        keyring: &'k [PublicKey],
    ) -> Result<(&'k PublicKey, &Signature), VerifyError> {
        for sig in &self.sigs {
            if let Some(key) = keyring.iter().find(|k| k.issuer_of(sig).is_some()) {
                return Ok((key, sig));
            }
        }
        Err(VerifyError::UnknownIssuer)
    }

    /// Verifies `data` (read to its end) against the signature of a trusted key and returns
    /// that key.
    pub fn verify<'k>(
        &self,
        keyring: &'k [PublicKey],
        data: &mut dyn Read,
    ) -> Result<&'k PublicKey, VerifyError> {
        let (key, sig) = self.find(keyring)?;
        let issuer = key
            .issuer_of(sig)
            .expect("bug: find returned the issuer's key");
        let mut counting = ErrorKeepingReader {
            inner: data,
            error: None,
        };
        match issuer.verify_stream(sig, &mut counting) {
            Ok(()) => Ok(key),
            Err(e) => match counting.error {
                Some(io) => Err(VerifyError::Io(io)),
                None => Err(VerifyError::Invalid(e.to_string())),
            },
        }
    }
}

/// Keeps the read error of the signed data, so that a failed read is not reported as a bad
/// signature.
struct ErrorKeepingReader<'a> {
    inner: &'a mut dyn Read,
    error: Option<std::io::Error>,
}

impl Read for ErrorKeepingReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => Ok(n),
            Err(e) => {
                let copy = std::io::Error::new(e.kind(), e.to_string());
                self.error = Some(e);
                Err(copy)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_grouped_as_gnupg_shows_them() {
        let fp: Vec<u8> = (0u8..20).collect();
        assert_eq!(
            group_fingerprint(&fp),
            "0001 0203 0405 0607 0809  0A0B 0C0D 0E0F 1011 1213"
        );
    }

    #[test]
    fn garbage_is_no_signature_and_no_key() {
        assert!(matches!(
            DetachedSignatures::parse(b"not a signature"),
            Err(VerifyError::NoSignature)
        ));
        assert!(PublicKey::from_armored(b"nope").is_err());
    }
}
