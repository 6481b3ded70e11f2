//! The appc metadata service (`rkt metadata-service`) and stage0's client side of it
//! (`rkt run --mds-register`, `rkt gc`). docs/cli.md, "rkt metadata-service", describes the
//! protocol and the isolation rules.
pub mod http;
mod service;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsFd, FromRawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use http::{read_request, Response};
use service::{Peer, Service};

/// rkt's default port for apps.
pub const DEFAULT_PORT: u16 = 18112;
/// rkt's registration socket.
pub const DEFAULT_SOCKET: &str = "/run/rkt/metadata-svc.sock";
/// Overrides [`DEFAULT_SOCKET`] for the service and its clients (tests run their own).
pub const SOCKET_ENV: &str = "RKT_METADATA_SOCKET";

/// Connections served at once; more get 503 right away.
const MAX_CONNECTIONS: usize = 256;
/// A client that sends nothing for this long is dropped.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Pod and image manifests are registered whole; app requests carry small forms.
const MAX_REGISTRATION_BODY: usize = 8 << 20;
const MAX_APP_BODY: usize = 64 << 10;

pub fn socket_path() -> PathBuf {
    std::env::var_os(SOCKET_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET))
}

fn random<const N: usize>() -> Result<[u8; N]> {
    let mut buf = [0u8; N];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .context("cannot read random bytes from /dev/urandom")?;
    Ok(buf)
}

/// The registration listener: systemd's socket (`LISTEN_FDS`, descriptor 3) or our own.
fn registration_listener(path: &Path) -> Result<UnixListener> {
    let ours = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        .is_none_or(|p| p == std::process::id());
    let fds = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse::<u32>().ok());
    if let (Some(n), true) = (fds, ours) {
        if n < 1 {
            bail!("LISTEN_FDS is {n}: systemd passed no socket");
        }
        // SAFETY: systemd's socket activation hands us descriptor 3, a listening socket.
        return Ok(unsafe { UnixListener::from_raw_fd(3) });
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("failed to create {}", dir.display()))?;
    }
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            bail!("a metadata service already listens on {}", path.display());
        }
        std::fs::remove_file(path)
            .with_context(|| format!("cannot remove the stale socket {}", path.display()))?;
    }
    let listener =
        UnixListener::bind(path).with_context(|| format!("cannot listen on {}", path.display()))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot restrict {}", path.display()))?;
    Ok(listener)
}

/// Runs the service until killed.
pub fn serve(port: u16) -> Result<i32> {
    let log = |m: &str| eprintln!("metadata-service: {m}");
    log("metadata service starting...");
    let unix = registration_listener(&socket_path())?;
    let tcp = TcpListener::bind(("0.0.0.0", port))
        .with_context(|| format!("error listening on port {port}"))?;
    let port = tcp.local_addr()?.port();
    let service = Arc::new(Service::new(random::<64>()?));
    let active = Arc::new(AtomicUsize::new(0));
    {
        let (service, active) = (Arc::clone(&service), Arc::clone(&active));
        std::thread::spawn(move || {
            for stream in unix.incoming().flatten() {
                let service = Arc::clone(&service);
                spawn_bounded(&active, stream, move |mut s| {
                    let root = crate::sys::peer_uid(s.as_fd()).is_ok_and(|uid| uid == 0);
                    if !root {
                        let _ = Response::text(403, "only root registers pods").write_to(&mut s);
                        return;
                    }
                    serve_one(&mut s, MAX_REGISTRATION_BODY, |req| {
                        let mut resp = service.handle(&Peer::Registrar, req);
                        // Tells stage0 where apps reach us (rkt's reply was empty).
                        if resp.status == 200 && req.method == "PUT" && resp.body.is_empty() {
                            resp.body = port.to_string().into_bytes();
                        }
                        resp
                    });
                });
            }
        });
    }
    log(&format!("metadata service running on port {port}..."));
    for stream in tcp.incoming().flatten() {
        let service = Arc::clone(&service);
        let Ok(peer) = stream.peer_addr() else {
            continue;
        };
        spawn_bounded(&active, stream, move |mut s| {
            serve_one(&mut s, MAX_APP_BODY, |req| {
                service.handle(&Peer::App(peer.ip()), req)
            });
        });
    }
    Ok(0)
}

/// Socket types the service serves.
trait Conn: Read + Write + Send + 'static {
    fn set_read_timeout_to(&self, d: Duration);
    fn set_write_timeout_to(&self, d: Duration);
    fn set_timeouts(&self) {
        self.set_read_timeout_to(IO_TIMEOUT);
        self.set_write_timeout_to(IO_TIMEOUT);
    }
}

impl Conn for TcpStream {
    fn set_read_timeout_to(&self, d: Duration) {
        let _ = self.set_read_timeout(Some(d));
    }
    fn set_write_timeout_to(&self, d: Duration) {
        let _ = self.set_write_timeout(Some(d));
    }
}

impl Conn for UnixStream {
    fn set_read_timeout_to(&self, d: Duration) {
        let _ = self.set_read_timeout(Some(d));
    }
    fn set_write_timeout_to(&self, d: Duration) {
        let _ = self.set_write_timeout(Some(d));
    }
}

/// How long a refused client may keep sending before the connection closes.
const DRAIN_TIMEOUT: Duration = Duration::from_millis(500);

/// A thread per connection, at most [`MAX_CONNECTIONS`] at once.
fn spawn_bounded<S: Conn>(
    active: &Arc<AtomicUsize>,
    mut stream: S,
    work: impl FnOnce(S) + Send + 'static,
) {
    stream.set_timeouts();
    if active.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
        active.fetch_sub(1, Ordering::SeqCst);
        let _ = Response::text(503, "too many connections").write_to(&mut stream);
        return;
    }
    let active = Arc::clone(active);
    let spawned = std::thread::Builder::new().spawn(move || {
        work(stream);
        active.fetch_sub(1, Ordering::SeqCst);
    });
    if spawned.is_err() {
        // The closure (and its counter decrement) never ran.
        eprintln!("metadata-service: cannot start a thread for a connection");
    }
}

fn serve_one<S: Conn>(s: &mut S, max_body: usize, handle: impl FnOnce(&http::Request) -> Response) {
    let resp = match read_request(s, max_body) {
        Ok(req) => {
            let resp = handle(&req);
            eprintln!(
                "metadata-service: {} {} - {}",
                req.method,
                redacted(&req.path),
                resp.status
            );
            resp
        }
        Err(refusal) => {
            let _ = refusal.write_to(s);
            // A client still sending a refused body would get a reset instead of the answer
            // if we closed now: read (and drop) a bounded amount of what it sends.
            s.set_read_timeout_to(DRAIN_TIMEOUT);
            let mut sink = [0u8; 16 * 1024];
            let mut left = MAX_DRAIN;
            while left > 0 {
                match s.read(&mut sink) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => left = left.saturating_sub(n),
                }
            }
            return;
        }
    };
    let _ = resp.write_to(s);
}

/// How much of a refused request is read before the connection closes.
const MAX_DRAIN: usize = 1 << 20;

/// A path for the log: an app's token is its pod's credential and stays out of it.
fn redacted(path: &str) -> String {
    match path.trim_start_matches('/').split_once("/acMetadata/") {
        Some((_, rest)) => format!("/<token>/acMetadata/{rest}"),
        None => path.to_string(),
    }
}

/// One request to the registration socket; the reply's status and body.
fn call(method: &str, path: &str, body: &[u8]) -> Result<(u16, String)> {
    let socket = socket_path();
    let mut s = UnixStream::connect(&socket).with_context(|| {
        format!(
            "cannot reach the metadata service at {}: is `rkt metadata-service` running?",
            socket.display()
        )
    })?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: rkt\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    let mut reply = String::new();
    s.read_to_string(&mut reply)
        .context("no reply from the metadata service")?;
    let status = reply
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .context("garbled reply from the metadata service")?;
    let body = reply.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    Ok((status, body.to_string()))
}

fn query_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A registered pod: the token its apps present and the port they reach the service on.
pub struct Registration {
    pub token: String,
    pub port: u16,
}

/// Registers a pod and its apps' image manifests (`rkt run --mds-register`).
pub fn register(
    uuid: &str,
    pod_dir: &Path,
    pod_manifest: &[u8],
    apps: &[(String, Vec<u8>)],
) -> Result<Registration> {
    let token: String = random::<16>()?.iter().map(|b| format!("{b:02x}")).collect();
    let path = format!(
        "/pods/{uuid}?token={token}&dir={}",
        query_escape(&pod_dir.display().to_string())
    );
    let (status, body) = call("PUT", &path, pod_manifest)?;
    if status != 200 {
        bail!(
            "the metadata service refused the pod ({status}: {})",
            body.trim()
        );
    }
    let port = body.trim().parse().unwrap_or(DEFAULT_PORT);
    for (app, manifest) in apps {
        let (status, body) = call("PUT", &format!("/pods/{uuid}/{app}"), manifest)?;
        if status != 200 {
            bail!(
                "the metadata service refused app {app} ({status}: {})",
                body.trim()
            );
        }
    }
    Ok(Registration { token, port })
}

/// Forgets a pod (`rkt gc`); a service that is not running has nothing to forget.
pub fn deregister(uuid: &str) -> Result<()> {
    if !socket_path().exists() {
        return Ok(());
    }
    // A service restarted since has forgotten the pod already (404).
    call("DELETE", &format!("/pods/{uuid}"), b"").map(|_| ())
}
