//! A Docker Registry HTTP API v2 client: manifests (Docker schema 2, OCI, and their lists and
//! indexes, from which linux/amd64 is chosen), blobs verified by digest, bearer-token and basic
//! authentication from the registry's `WWW-Authenticate` challenge.
use std::io::{Read, Write};
use std::sync::Mutex;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{io_err, DockerError, DockerRef};
use crate::credentials::base64;
use crate::http::{Client, Response};

const MANIFEST_TYPES: &str = "application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.oci.image.index.v1+json";

/// Manifests and configs larger than this are refused.
const DOCUMENT_LIMIT: u64 = 4 << 20;

#[derive(Debug, Clone, Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: String,
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub platform: Option<Platform>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Platform {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub variant: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ManifestDoc {
    #[serde(rename = "schemaVersion", default)]
    schema_version: u32,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
}

/// The image chosen for a reference.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// Digest of the image manifest (not of an index that pointed to it).
    pub manifest_digest: String,
    pub config_digest: String,
    pub config: Vec<u8>,
    /// Bottom layer first.
    pub layers: Vec<Descriptor>,
}

pub struct Registry<'a> {
    client: &'a Client,
    base: String,
    repository: String,
    basic: Option<(String, String)>,
    auth: Mutex<Option<String>>,
}

impl<'a> Registry<'a> {
    /// A registry client for `r`, with the `dockerAuth` user and password for its registry.
    pub fn new(client: &'a Client, r: &DockerRef, basic: Option<(String, String)>) -> Self {
        let scheme = if client.options().allow_http {
            "http"
        } else {
            "https"
        };
        Registry {
            client,
            base: format!("{scheme}://{}", r.registry),
            repository: r.repository.clone(),
            basic,
            auth: Mutex::new(None),
        }
    }

    /// GET a path of the repository, answering one authentication challenge.
    fn get(&self, path: &str, accept: &str) -> Result<Response, DockerError> {
        let url = format!("{}/v2/{}/{path}", self.base, self.repository);
        for attempt in 0..2 {
            let auth = self.auth.lock().expect("auth lock").clone();
            let mut headers = vec![("Accept", accept)];
            if let Some(a) = auth.as_deref() {
                headers.push(("Authorization", a));
            }
            let resp = self.client.request(&url, &headers)?;
            match resp.status {
                200 => return Ok(resp),
                401 if attempt == 0 => {
                    let challenge = resp.header("www-authenticate").unwrap_or("").to_string();
                    let header = self.authenticate(&challenge)?;
                    *self.auth.lock().expect("auth lock") = Some(header);
                }
                401 => return Err(DockerError::Unauthorized(self.base.clone())),
                status => return Err(DockerError::Status { status, url }),
            }
        }
        Err(DockerError::Unauthorized(self.base.clone()))
    }

    /// The `Authorization` header a challenge asks for.
    fn authenticate(&self, challenge: &str) -> Result<String, DockerError> {
        let (scheme, params) = challenge.split_once(' ').unwrap_or((challenge, ""));
        let basic_header = self
            .basic
            .as_ref()
            .map(|(u, p)| format!("Basic {}", base64(format!("{u}:{p}").as_bytes())));
        if scheme.eq_ignore_ascii_case("basic") {
            return basic_header.ok_or_else(|| DockerError::Unauthorized(self.base.clone()));
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(DockerError::Unauthorized(self.base.clone()));
        }
        let params = parse_challenge(params);
        let realm = params
            .iter()
            .find(|(k, _)| k == "realm")
            .map(|(_, v)| v.clone())
            .ok_or_else(|| DockerError::Unauthorized(self.base.clone()))?;
        let query: Vec<String> = params
            .iter()
            .filter(|(k, _)| k == "service" || k == "scope")
            .map(|(k, v)| format!("{k}={}", url_encode(v)))
            .collect();
        let sep = if realm.contains('?') { '&' } else { '?' };
        let url = if query.is_empty() {
            realm
        } else {
            format!("{realm}{sep}{}", query.join("&"))
        };
        let mut headers = Vec::new();
        if let Some(b) = basic_header.as_deref() {
            headers.push(("Authorization", b));
        }
        let resp = self.client.request(&url, &headers)?;
        if resp.status != 200 {
            return Err(DockerError::Unauthorized(self.base.clone()));
        }
        let body = resp.into_download().read_limited(DOCUMENT_LIMIT)?;
        #[derive(Deserialize)]
        struct Token {
            #[serde(default)]
            token: String,
            #[serde(default)]
            access_token: String,
        }
        let t: Token = serde_json::from_slice(&body).map_err(|e| DockerError::Invalid {
            what: "token response".into(),
            detail: e.to_string(),
        })?;
        let token = if t.token.is_empty() {
            t.access_token
        } else {
            t.token
        };
        if token.is_empty() {
            return Err(DockerError::Unauthorized(self.base.clone()));
        }
        Ok(format!("Bearer {token}"))
    }

    fn document(&self, path: &str, accept: &str, what: &str) -> Result<Vec<u8>, DockerError> {
        let resp = self.get(path, accept)?;
        resp.into_download()
            .read_limited(DOCUMENT_LIMIT)
            .map_err(|e| DockerError::Invalid {
                what: what.to_string(),
                detail: e.to_string(),
            })
    }

    /// The image for a tag or digest: an index or list is resolved to linux/`arch`.
    pub fn resolve(&self, reference: &str, arch: &str) -> Result<Resolved, DockerError> {
        let mut reference = reference.to_string();
        for _ in 0..2 {
            let bytes = self.document(
                &format!("manifests/{reference}"),
                MANIFEST_TYPES,
                "manifest",
            )?;
            let digest = sha256_digest(&bytes);
            if reference.starts_with("sha256:") && digest != reference {
                return Err(DockerError::DigestMismatch {
                    what: "manifest".into(),
                    expected: reference,
                    actual: digest,
                });
            }
            let doc: ManifestDoc =
                serde_json::from_slice(&bytes).map_err(|e| DockerError::Invalid {
                    what: "manifest".into(),
                    detail: e.to_string(),
                })?;
            if doc.schema_version != 2 {
                return Err(DockerError::Invalid {
                    what: "manifest".into(),
                    detail: format!(
                        "schema version {} is not supported (only 2 and OCI are)",
                        doc.schema_version
                    ),
                });
            }
            if let Some(list) = doc.manifests {
                let chosen = list
                    .iter()
                    .find(|d| {
                        d.platform
                            .as_ref()
                            .is_some_and(|p| p.os == "linux" && p.architecture == arch)
                    })
                    .ok_or_else(|| DockerError::NoPlatform(self.repository.clone()))?;
                reference = chosen.digest.clone();
                continue;
            }
            let (Some(config), Some(layers)) = (doc.config, doc.layers) else {
                return Err(DockerError::Invalid {
                    what: "manifest".into(),
                    detail: "no config or layers".into(),
                });
            };
            let config_bytes =
                self.document(&format!("blobs/{}", config.digest), "*/*", "image config")?;
            let actual = sha256_digest(&config_bytes);
            if actual != config.digest {
                return Err(DockerError::DigestMismatch {
                    what: "image config".into(),
                    expected: config.digest,
                    actual,
                });
            }
            return Ok(Resolved {
                manifest_digest: digest,
                config_digest: config.digest,
                config: config_bytes,
                layers,
            });
        }
        Err(DockerError::Invalid {
            what: "manifest".into(),
            detail: "an index points to another index".into(),
        })
    }

    /// Writes the blob `digest` to `out`, failing unless its bytes have that digest.
    pub fn blob_to(&self, digest: &str, out: &mut dyn Write) -> Result<u64, DockerError> {
        if !digest.starts_with("sha256:") || digest.len() != 71 {
            return Err(DockerError::BadDigest(digest.to_string()));
        }
        let resp = self.get(&format!("blobs/{digest}"), "*/*")?;
        let mut body = resp.body;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 256 * 1024];
        let mut total = 0u64;
        loop {
            let n = body
                .read(&mut buf)
                .map_err(io_err(format!("download of {digest}")))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n])
                .map_err(io_err(format!("write of {digest}")))?;
            total += n as u64;
        }
        let actual = format!("sha256:{}", hex(&hasher.finalize()));
        if actual != digest {
            return Err(DockerError::DigestMismatch {
                what: format!("layer {digest}"),
                expected: digest.to_string(),
                actual,
            });
        }
        Ok(total)
    }
}

pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `key="value", key=value` pairs of an auth challenge.
fn parse_challenge(params: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = params.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = after.trim_start();
        let (value, remaining) = if let Some(q) = after.strip_prefix('"') {
            match q.find('"') {
                Some(end) => (&q[..end], &q[end + 1..]),
                None => (q, ""),
            }
        } else {
            match after.find(',') {
                Some(end) => (&after[..end], &after[end..]),
                None => (after, ""),
            }
        };
        out.push((key, value.to_string()));
        rest = remaining.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_are_parsed() {
        let p = parse_challenge(
            r#"realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull""#,
        );
        assert_eq!(
            p[0],
            ("realm".into(), "https://auth.example.com/token".into())
        );
        assert_eq!(p[2], ("scope".into(), "repository:a/b:pull".into()));
        assert_eq!(
            url_encode("repository:a/b:pull"),
            "repository%3Aa%2Fb%3Apull"
        );
    }
}
