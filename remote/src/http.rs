//! HTTP(S) downloads with ureq: TLS verified against the system's CA bundle (or the one
//! `SSL_CERT_FILE` names, as Go programs such as rkt honour), redirects followed, conditional
//! requests with `ETag`, `Cache-Control: max-age` read, per-host credentials.
use std::io::Read;
use std::time::Duration;

use ureq::tls::{parse_pem, PemItem, RootCerts, TlsConfig};
use ureq::Agent;

use crate::credentials::Credentials;

/// How long to wait for a connection, for response headers, and between two reads of a body:
/// a server that stops answering fails the fetch instead of hanging rkt.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// CA bundles tried when `SSL_CERT_FILE` is not set (Debian's first, as Go's list).
const CA_BUNDLES: [&str; 4] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("plain HTTP is not allowed for {0}")]
    PlainHttp(String),
    #[error("bad HTTP status code: {code}")]
    Status { code: u16 },
    #[error("{0}")]
    Transport(String),
    #[error("cannot read the CA bundle {path}: {source}")]
    CaBundle {
        path: String,
        source: std::io::Error,
    },
}

/// What may be relaxed.
#[derive(Debug, Clone, Default)]
pub struct HttpOptions {
    /// `--insecure-options=tls`: accept any certificate.
    pub skip_tls_verify: bool,
    /// `--insecure-options=http`: plain `http://` URLs (and redirects to them) are allowed.
    pub allow_http: bool,
    /// Credentials by host, from `auth.d` (or the registry's token exchange).
    pub credentials: Credentials,
    /// Overrides [`DEFAULT_TIMEOUT`].
    pub timeout: Option<Duration>,
}

/// A response worth reading.
pub enum Fetched {
    /// 304: the cached copy (whose ETag was sent) is current.
    NotModified,
    /// 202: the server asks to come back later (rkt's deferred signature download).
    Deferred,
    Body(Download),
}

/// A 200 response.
pub struct Download {
    pub etag: Option<String>,
    /// `Cache-Control: max-age` in seconds; 0 when absent or `no-cache`/`no-store`.
    pub max_age: u64,
    /// `Content-Length`, when sent.
    pub length: Option<u64>,
    pub body: Box<dyn Read + Send + Sync + 'static>,
}

impl Download {
    /// The whole body, refused past `limit` bytes (keys, signatures, discovery pages).
    pub fn read_limited(self, limit: u64) -> Result<Vec<u8>, HttpError> {
        let mut out = Vec::new();
        self.body
            .take(limit + 1)
            .read_to_end(&mut out)
            .map_err(|e| HttpError::Transport(e.to_string()))?;
        if out.len() as u64 > limit {
            return Err(HttpError::Transport(format!(
                "response larger than {limit} bytes"
            )));
        }
        Ok(out)
    }
}

/// Any response, whatever its status (for protocols that read 401 challenges).
pub struct Response {
    pub status: u16,
    headers: Vec<(String, String)>,
    pub body: Box<dyn Read + Send + Sync + 'static>,
}

impl Response {
    /// The first value of a header (names compared without case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as a [`Download`] (with its length, ETag and max-age).
    pub fn into_download(self) -> Download {
        Download {
            etag: self.header("etag").map(str::to_string),
            max_age: self.header("cache-control").map(parse_max_age).unwrap_or(0),
            length: self
                .header("content-length")
                .and_then(|v| v.trim().parse().ok()),
            body: self.body,
        }
    }
}

/// An HTTP(S) client with the options of one rkt invocation.
pub struct Client {
    agent: Agent,
    options: HttpOptions,
}

impl Client {
    pub fn new(options: HttpOptions) -> Result<Client, HttpError> {
        let roots = if options.skip_tls_verify {
            RootCerts::Specific(Default::default())
        } else {
            system_roots()?
        };
        let tls = TlsConfig::builder()
            .root_certs(roots)
            .disable_verification(options.skip_tls_verify)
            .build();
        let timeout = options.timeout.unwrap_or(DEFAULT_TIMEOUT);
        let agent: Agent = Agent::config_builder()
            .tls_config(tls)
            .https_only(!options.allow_http)
            .http_status_as_error(false)
            .max_redirects(10)
            // The bytes as served: an ACI's signature covers them, never a decoded form.
            .accept_encoding("identity")
            .user_agent(concat!("rkt/", env!("CARGO_PKG_VERSION")))
            .timeout_connect(Some(timeout))
            .timeout_recv_response(Some(timeout))
            .timeout_per_read(Some(timeout))
            .build()
            .into();
        Ok(Client { agent, options })
    }

    pub fn options(&self) -> &HttpOptions {
        &self.options
    }

    /// GET `url`, conditional on `etag` when given. Statuses other than 200, 202 and 304 are
    /// [`HttpError::Status`].
    pub fn get(&self, url: &str, etag: Option<&str>) -> Result<Fetched, HttpError> {
        self.get_with(url, etag, &[])
    }

    /// As [`Client::get`], with extra request headers.
    pub fn get_with(
        &self,
        url: &str,
        etag: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Result<Fetched, HttpError> {
        if url.starts_with("http://") && !self.options.allow_http {
            return Err(HttpError::PlainHttp(url.to_string()));
        }
        let mut req = self.agent.get(url);
        if let Some(tag) = etag {
            req = req.header("If-None-Match", tag);
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        if let Some(auth) = self.options.credentials.header_for(url) {
            req = req.header("Authorization", auth.as_str());
        }
        let resp = req.call().map_err(transport_error)?;
        let code = resp.status().as_u16();
        match code {
            200 => {}
            202 => return Ok(Fetched::Deferred),
            304 => return Ok(Fetched::NotModified),
            _ => return Err(HttpError::Status { code }),
        }
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let etag = header("etag");
        let max_age = header("cache-control")
            .map(|v| parse_max_age(&v))
            .unwrap_or(0);
        let length = header("content-length").and_then(|v| v.trim().parse().ok());
        Ok(Fetched::Body(Download {
            etag,
            max_age,
            length,
            body: Box::new(resp.into_body().into_reader()),
        }))
    }
}

impl Client {
    /// GET `url` with `headers` (no `auth.d` credentials); every status is returned.
    pub fn request(&self, url: &str, headers: &[(&str, &str)]) -> Result<Response, HttpError> {
        if url.starts_with("http://") && !self.options.allow_http {
            return Err(HttpError::PlainHttp(url.to_string()));
        }
        let mut req = self.agent.get(url);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let resp = req.call().map_err(transport_error)?;
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
            .collect();
        Ok(Response {
            status,
            headers,
            body: Box::new(resp.into_body().into_reader()),
        })
    }
}

/// ureq's error, without anything that could carry credentials (URLs are ours to print).
fn transport_error(e: ureq::Error) -> HttpError {
    match e {
        ureq::Error::Timeout(_) => HttpError::Transport("timed out waiting for the server".into()),
        ureq::Error::RequireHttpsOnly(u) => HttpError::PlainHttp(u),
        ureq::Error::TooManyRedirects => HttpError::Transport("too many redirects".into()),
        other => HttpError::Transport(other.to_string()),
    }
}

/// `max-age=N` from a `Cache-Control` value; `no-cache` and `no-store` win over it.
pub fn parse_max_age(value: &str) -> u64 {
    let mut age = 0;
    for directive in value.split(',').map(|d| d.trim().to_ascii_lowercase()) {
        if directive == "no-cache" || directive == "no-store" {
            return 0;
        }
        if let Some(n) = directive.strip_prefix("max-age=") {
            age = n.trim_matches('"').parse().unwrap_or(0);
        }
    }
    age
}

fn system_roots() -> Result<RootCerts, HttpError> {
    let path = match std::env::var("SSL_CERT_FILE") {
        Ok(p) if !p.is_empty() => Some(p),
        _ => CA_BUNDLES
            .iter()
            .find(|p| std::path::Path::new(p).is_file())
            .map(|p| p.to_string()),
    };
    let Some(path) = path else {
        return Ok(RootCerts::Specific(Default::default()));
    };
    let pem = std::fs::read(&path).map_err(|source| HttpError::CaBundle {
        path: path.clone(),
        source,
    })?;
    let certs: Vec<_> = parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect();
    Ok(RootCerts::new_with_certs(&certs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_is_read_and_no_cache_wins() {
        assert_eq!(parse_max_age("max-age=600"), 600);
        assert_eq!(parse_max_age("public, max-age=60"), 60);
        assert_eq!(parse_max_age("max-age=60, no-cache"), 0);
        assert_eq!(parse_max_age("no-store"), 0);
        assert_eq!(parse_max_age("private"), 0);
        assert_eq!(parse_max_age("max-age=bogus"), 0);
    }
}
