//! Real HTTP(S) servers on loopback for the fetch tests: a CA and a certificate for
//! `localhost`/127.0.0.1 made by `openssl`, TLS by rustls, and per-path replies the test sets
//! (files with ETag and Cache-Control, statuses, redirects, truncated bodies, silence).
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A CA and a server certificate signed by it, in `dir`.
pub struct Pki {
    pub ca_pem: PathBuf,
    cert_pem: PathBuf,
    key_pem: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Pki {
    pub fn new(dir: &Path) -> Pki {
        std::fs::create_dir_all(dir).unwrap();
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=rkt test CA",
            ],
        );
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=localhost",
            ],
        );
        std::fs::write(
            dir.join("ext.cnf"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\nbasicConstraints=CA:FALSE\n",
        )
        .unwrap();
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.pem",
                "-days",
                "2",
                "-extfile",
                "ext.cnf",
            ],
        );
        Pki {
            ca_pem: dir.join("ca.pem"),
            cert_pem: dir.join("server.pem"),
            key_pem: dir.join("server.key"),
        }
    }

    pub fn cert_pem(&self) -> &Path {
        &self.cert_pem
    }

    pub fn key_pem(&self) -> &Path {
        &self.key_pem
    }

    /// The files [`Pki::new`] made in `dir`.
    pub fn reuse(dir: &Path) -> Pki {
        Pki {
            ca_pem: dir.join("ca.pem"),
            cert_pem: dir.join("server.pem"),
            key_pem: dir.join("server.key"),
        }
    }

    fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&self.cert_pem)
            .unwrap()
            .map(|c| c.unwrap())
            .collect();
        let key = PrivateKeyDer::from_pem_file(&self.key_pem).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Arc::new(
            rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(certs, key)
                .unwrap(),
        )
    }
}

/// What the server answers for a path (with its query string).
#[derive(Clone)]
pub enum Reply {
    /// 200 with the body and headers; 304 when the request's `If-None-Match` equals the
    /// `ETag` header given here.
    File {
        body: Vec<u8>,
        headers: Vec<(String, String)>,
    },
    Status(u16),
    Redirect(String),
    /// Claims `claimed` bytes, sends `body` and closes.
    Truncated {
        body: Vec<u8>,
        claimed: usize,
    },
    /// Reads the request and never answers.
    Silent,
    /// `then` when the request's `Authorization` is exactly `expect`, else 401 with
    /// `WWW-Authenticate: challenge`.
    Auth {
        expect: String,
        challenge: String,
        then: Box<Reply>,
    },
    /// `first` for the first request, `then` for every later one.
    Once {
        first: Box<Reply>,
        then: Box<Reply>,
    },
    /// Claims `claimed` bytes, sends `body` and then nothing more, keeping the connection.
    Stall {
        body: Vec<u8>,
        claimed: usize,
    },
}

impl Reply {
    pub fn file(body: &[u8]) -> Reply {
        Reply::File {
            body: body.to_vec(),
            headers: Vec::new(),
        }
    }

    pub fn with_header(self, name: &str, value: &str) -> Reply {
        match self {
            Reply::File { body, mut headers } => {
                headers.push((name.to_string(), value.to_string()));
                Reply::File { body, headers }
            }
            other => other,
        }
    }
}

/// One request the server saw and the status it answered.
#[derive(Debug, Clone)]
pub struct Hit {
    pub path: String,
    pub status: u16,
    pub headers: Vec<(String, String)>,
}

struct Shared {
    routes: Mutex<HashMap<String, Reply>>,
    hits: Mutex<Vec<Hit>>,
    stop: AtomicBool,
}

/// A server on a loopback port of its own; stops when dropped.
pub struct Server {
    addr: SocketAddr,
    tls: bool,
    shared: Arc<Shared>,
}

impl Server {
    /// HTTPS on 127.0.0.1, on a port the kernel picks.
    pub fn https(pki: &Pki) -> Server {
        Server::bind("127.0.0.1:0", Some(pki.server_config()))
    }

    /// Plain HTTP on 127.0.0.1.
    pub fn http() -> Server {
        Server::bind("127.0.0.1:0", None)
    }

    /// HTTPS on `addr` (e.g. `[::]:443` inside a network namespace of the test's own).
    pub fn https_on(addr: &str, pki: &Pki) -> Server {
        Server::bind(addr, Some(pki.server_config()))
    }

    fn bind(addr: &str, tls: Option<Arc<rustls::ServerConfig>>) -> Server {
        let listener = TcpListener::bind(addr).expect("bind test server");
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            routes: Mutex::new(HashMap::new()),
            hits: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        });
        let is_tls = tls.is_some();
        let s = shared.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let s = s.clone();
                let tls = tls.clone();
                std::thread::spawn(move || serve(conn, tls, &s));
            }
        });
        Server {
            addr,
            tls: is_tls,
            shared,
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `https://127.0.0.1:PORT/path` (or `http://`).
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}{path}", self.addr.port())
    }

    pub fn route(&self, path: &str, reply: Reply) {
        self.shared
            .routes
            .lock()
            .unwrap()
            .insert(path.to_string(), reply);
    }

    /// Requests for `path` so far.
    pub fn hits(&self, path: &str) -> Vec<Hit> {
        self.shared
            .hits
            .lock()
            .unwrap()
            .iter()
            .filter(|h| h.path == path)
            .cloned()
            .collect()
    }

    /// Every request so far.
    pub fn all_hits(&self) -> Vec<Hit> {
        self.shared.hits.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

trait Stream: Read + Write {}
impl<T: Read + Write> Stream for T {}

fn serve(conn: TcpStream, tls: Option<Arc<rustls::ServerConfig>>, shared: &Shared) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(60)));
    let mut stream: Box<dyn Stream> = match tls {
        Some(cfg) => {
            let Ok(session) = rustls::ServerConnection::new(cfg) else {
                return;
            };
            Box::new(rustls::StreamOwned::new(session, conn))
        }
        None => Box::new(conn),
    };
    let Some((path, headers)) = read_request(&mut stream) else {
        return;
    };
    let mut reply = {
        let mut routes = shared.routes.lock().unwrap();
        match routes.get(&path).cloned() {
            Some(Reply::Once { first, then }) => {
                routes.insert(path.clone(), *then);
                Some(*first)
            }
            other => other,
        }
    };
    while let Some(Reply::Auth {
        expect,
        challenge,
        then,
    }) = reply.clone()
    {
        let given = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
            .map(|(_, v)| v.clone());
        if given.as_deref() == Some(expect.as_str()) {
            reply = Some(*then);
        } else {
            shared.hits.lock().unwrap().push(Hit {
                path: path.clone(),
                status: 401,
                headers: headers.clone(),
            });
            respond(
                &mut stream,
                401,
                &[("WWW-Authenticate".into(), challenge)],
                b"",
                None,
            );
            return;
        }
    }
    let record = |status| {
        shared.hits.lock().unwrap().push(Hit {
            path: path.clone(),
            status,
            headers: headers.clone(),
        })
    };
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    match reply {
        None => {
            record(404);
            respond(&mut stream, 404, &[], b"not found\n", None);
        }
        Some(Reply::Status(code)) => {
            record(code);
            respond(&mut stream, code, &[], b"", None);
        }
        Some(Reply::Redirect(to)) => {
            record(302);
            respond(&mut stream, 302, &[("Location".into(), to)], b"", None);
        }
        Some(Reply::File {
            body,
            headers: extra,
        }) => {
            let etag = extra
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("etag"))
                .map(|(_, v)| v.clone());
            if etag.is_some() && header("if-none-match") == etag {
                record(304);
                respond(&mut stream, 304, &extra, b"", Some(0));
            } else {
                record(200);
                respond(&mut stream, 200, &extra, &body, None);
            }
        }
        Some(Reply::Truncated { body, claimed }) => {
            record(200);
            respond(&mut stream, 200, &[], &body, Some(claimed));
        }
        Some(Reply::Stall { body, claimed }) => {
            record(200);
            respond(&mut stream, 200, &[], &body, Some(claimed));
            while !shared.stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Some(Reply::Auth { .. } | Reply::Once { .. }) => {
            record(500);
            respond(&mut stream, 500, &[], b"nested test reply\n", None);
        }
        Some(Reply::Silent) => {
            record(0);
            while !shared.stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

fn read_request(stream: &mut dyn Stream) -> Option<(String, Vec<(String, String)>)> {
    let mut reader = BufReader::new(stream);
    let mut first = String::new();
    reader.read_line(&mut first).ok()?;
    let path = first.split_whitespace().nth(1)?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    Some((path, headers))
}

fn respond(
    stream: &mut dyn Stream,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
    claimed_len: Option<usize>,
) {
    let mut head = format!("HTTP/1.1 {status} X\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\n\r\n",
        claimed_len.unwrap_or(body.len())
    ));
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
    let _ = stream.flush();
}
