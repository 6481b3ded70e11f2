//! Credentials by host (`auth.d` basic and oauth entries, registry tokens). Never printed:
//! `Debug` shows only the hosts.
use std::collections::BTreeMap;
use std::fmt;

/// One `Authorization` header value, kept out of `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// `Authorization` headers by `host[:port]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Credentials {
    by_host: BTreeMap<String, Secret>,
}

impl Credentials {
    pub fn add_basic(&mut self, host: &str, user: &str, password: &str) {
        let encoded = base64(format!("{user}:{password}").as_bytes());
        self.by_host
            .insert(host.to_string(), Secret(format!("Basic {encoded}")));
    }

    pub fn add_bearer(&mut self, host: &str, token: &str) {
        self.by_host
            .insert(host.to_string(), Secret(format!("Bearer {token}")));
    }

    /// The header for a URL's host, if any.
    pub fn header_for(&self, url: &str) -> Option<&Secret> {
        self.by_host.get(host_of(url)?)
    }

    pub fn hosts(&self) -> impl Iterator<Item = &str> {
        self.by_host.keys().map(String::as_str)
    }
}

/// `host[:port]` of an absolute URL.
pub fn host_of(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    // Userinfo is never ours to send along.
    Some(authority.rsplit_once('@').map_or(authority, |(_, h)| h))
}

/// Standard base64 with padding (RFC 4648).
pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_headers_and_hosts() {
        assert_eq!(base64(b"user:pass"), "dXNlcjpwYXNz");
        assert_eq!(base64(b"a"), "YQ==");
        assert_eq!(base64(b"ab"), "YWI=");
        let mut c = Credentials::default();
        c.add_basic("example.com:5000", "user", "pass");
        assert_eq!(
            c.header_for("https://example.com:5000/v2/")
                .unwrap()
                .as_str(),
            "Basic dXNlcjpwYXNz"
        );
        assert!(c.header_for("https://example.com/v2/").is_none());
        assert!(!format!("{c:?}").contains("dXNl"));
        assert_eq!(host_of("https://u:p@h.com:1/x?y"), Some("h.com:1"));
    }
}
