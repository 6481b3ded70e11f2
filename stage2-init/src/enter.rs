//! `rkt enter` inside the pod: stage2-init listens on [`ENTER_SOCKET`](crate::contract) and
//! starts each entered command itself, with [`sys::spawn`] like the apps, so a command gets
//! exactly its app's confinement (root, mount namespace, capability sets) and no host binary
//! ever runs inside the pod's PID namespace (the CVE-2019-5736 class).
//!
//! The protocol, over a `SOCK_SEQPACKET` connection (one message each, NUL-terminated fields
//! as in the plan, see docs/stage-contract.md):
//!
//! ```text
//!  stage1 enter (host)                              stage2-init (pod PID 1)
//!  rkt-enter-v1␀ app␀ web␀ stdio␀ pff␀   ────────▶  peer outside our PID namespace and root?
//!    [winsize␀ 24␀ 80␀] [env␀ 1␀ TERM=xterm␀]       'p': a new pty of the pod's devpts;
//!    argv␀ 2␀ /bin/sh␀ -l␀                          'f': the next descriptor passed along
//!    + SCM_RIGHTS: one descriptor per 'f'           spawn: setsid, [TIOCSCTTY], app's root,
//!                                                   uid 0, the app's capabilities, cwd /
//!                                      ◀────────  started␀ <pid>␀ (+ SCM_RIGHTS: pty master)
//!                                                 or error␀ <message>␀, then close
//!  signal␀ 15␀  (forwarded signals)      ────────▶  kill(-pid, 15)
//!                                      ◀────────  exit␀ <status>␀ (128+N: killed by N), close
//! ```
//!
//! The requester's own descriptors are passed only for slots that are not terminals: a
//! terminal is never handed to the pod (TIOCSTI would type into the operator's shell).

use std::ffi::OsString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

use crate::contract::ENTER_MAGIC as MAGIC;
use crate::plan::{AppPlan, Plan};
use crate::supervisor::{Pid, WaitStatus};
use crate::sys::{self, Command, Connection, ExecLimits, ExecSpec, Listener, Session, Stdio};

/// Largest request accepted (arguments and environment included).
const MAX_REQUEST: usize = 128 * 1024;
/// Connections served at once; more are closed right away.
const MAX_CONNECTIONS: usize = 16;

/// Where one of the entered command's descriptors 0-2 comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// The slave of a pty stage2-init creates (`p`).
    Pty,
    /// The next descriptor passed with the request (`f`).
    Passed,
}

/// A parsed enter request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub app: String,
    pub stdio: [Slot; 3],
    /// Rows and columns of the pty.
    pub winsize: Option<(u16, u16)>,
    /// `K=V` entries set on top of the app's environment.
    pub env: Vec<OsString>,
    pub argv: Vec<OsString>,
}

impl Request {
    fn wants_pty(&self) -> bool {
        self.stdio.contains(&Slot::Pty)
    }

    fn passed_fds(&self) -> usize {
        self.stdio.iter().filter(|s| **s == Slot::Passed).count()
    }
}

/// Parses a request; the error is sent back to the client as is.
pub fn parse_request(input: &[u8]) -> Result<Request, String> {
    let body = input
        .strip_suffix(b"\0")
        .ok_or("truncated request: no NUL after the last field")?;
    let mut fields = body.split(|b| *b == 0);
    if fields.next() != Some(MAGIC.as_bytes()) {
        return Err(format!("not an enter request (expected {MAGIC:?})"));
    }
    let mut next = |what: &str| {
        fields
            .next()
            .ok_or_else(|| format!("truncated request: expected {what}"))
    };
    let number = |text: &[u8], what: &str| -> Result<u32, String> {
        std::str::from_utf8(text)
            .ok()
            .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| {
                format!(
                    "{what}: {:?} is not a number",
                    String::from_utf8_lossy(text)
                )
            })
    };
    let (mut app, mut stdio, mut winsize, mut env, mut argv) = (None, None, None, None, None);
    while let Ok(key) = next("a key") {
        let key = String::from_utf8_lossy(key).into_owned();
        let duplicate = || format!("duplicate key {key:?}");
        match key.as_str() {
            "app" if app.is_none() => {
                app = Some(String::from_utf8_lossy(next("an app name")?).into_owned())
            }
            "stdio" if stdio.is_none() => stdio = Some(parse_stdio(next("three stdio slots")?)?),
            "winsize" if winsize.is_none() => {
                let rows = number(next("rows")?, "winsize")?;
                let cols = number(next("columns")?, "winsize")?;
                let fit =
                    |n: u32| u16::try_from(n).map_err(|_| format!("winsize: {n} is too large"));
                winsize = Some((fit(rows)?, fit(cols)?));
            }
            "env" | "argv" => {
                let count = number(next("a count")?, &key)?;
                let list = (0..count)
                    .map(|_| next("a list item").map(|f| OsString::from_vec(f.to_vec())))
                    .collect::<Result<Vec<_>, _>>()?;
                let slot = if key == "env" { &mut env } else { &mut argv };
                if slot.replace(list).is_some() {
                    return Err(duplicate());
                }
            }
            "app" | "stdio" | "winsize" => return Err(duplicate()),
            _ => return Err(format!("unknown key {key:?}")),
        }
    }
    let app = app.ok_or("missing key \"app\"")?;
    let argv: Vec<OsString> = argv.ok_or("missing key \"argv\"")?;
    if argv.is_empty() || argv[0].is_empty() {
        return Err("argv needs a command".into());
    }
    let env = env.unwrap_or_default();
    if let Some(bad) = env
        .iter()
        .find(|e| e.as_bytes().iter().position(|b| *b == b'=').unwrap_or(0) == 0)
    {
        return Err(format!("env entry {bad:?} is not K=V"));
    }
    Ok(Request {
        app,
        stdio: stdio.ok_or("missing key \"stdio\"")?,
        winsize,
        env,
        argv,
    })
}

fn parse_stdio(value: &[u8]) -> Result<[Slot; 3], String> {
    let slot = |b: &u8| match b {
        b'p' => Ok(Slot::Pty),
        b'f' => Ok(Slot::Passed),
        _ => Err(format!("stdio: {:?} is not p or f", *b as char)),
    };
    match value {
        [a, b, c] => Ok([slot(a)?, slot(b)?, slot(c)?]),
        _ => Err(format!(
            "stdio: {:?} is not three slots",
            String::from_utf8_lossy(value)
        )),
    }
}

fn message(fields: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for field in fields {
        out.extend_from_slice(field);
        out.push(0);
    }
    out
}

/// `started␀<pid>␀`
pub fn started_reply(pid: Pid) -> Vec<u8> {
    message(&[b"started", pid.to_string().as_bytes()])
}

/// `error␀<message>␀`
pub fn error_reply(text: &str) -> Vec<u8> {
    message(&[b"error", text.as_bytes()])
}

/// `exit␀<status>␀`, the status as a shell reports it (128+N when killed by signal N).
pub fn exit_reply(status: WaitStatus) -> Vec<u8> {
    let code = match status {
        WaitStatus::Exited(code) => code,
        WaitStatus::Signaled(signal) => 128 + signal,
    };
    message(&[b"exit", code.to_string().as_bytes()])
}

/// `signal␀<n>␀` from the client: the signal number to forward.
pub fn parse_signal(input: &[u8]) -> Option<libc::c_int> {
    let mut fields = input.strip_suffix(b"\0")?.split(|b| *b == 0);
    if fields.next()? != b"signal" {
        return None;
    }
    let n = std::str::from_utf8(fields.next()?).ok()?.parse().ok()?;
    fields.next().is_none().then_some(n)
}

/// The entered command's environment: the app's, with the request's entries set on top.
fn merged_env(app: &AppPlan, extra: &[OsString]) -> Vec<OsString> {
    let key = |e: &OsString| {
        let bytes = e.as_bytes();
        bytes[..bytes.iter().position(|b| *b == b'=').unwrap_or(bytes.len())].to_vec()
    };
    let mut env: Vec<OsString> = app
        .env
        .iter()
        .filter(|e| !extra.iter().any(|x| key(x) == key(e)))
        .cloned()
        .collect();
    env.extend(extra.iter().cloned());
    env
}

/// An entered command that is running, and the connection its exit status goes to.
struct Entered {
    conn: Option<Connection>,
    pid: Pid,
}

/// The listening socket and every connection to it.
pub struct EnterServer {
    listener: Listener,
    /// Accepted, waiting for their request.
    pending: Vec<Connection>,
    entered: Vec<Entered>,
    /// Only peers outside our PID namespace (pid 0 to us) may enter: a pod process must not
    /// start commands in other apps. Off when stage2-init runs outside a pod (tests).
    host_peers_only: bool,
    /// In a pod with its own user namespace (`--private-users`) the host's root is not
    /// mapped and shows as the kernel's overflow uid; a peer outside the pod with that uid is
    /// taken as the host's root. Only root reaches the socket: it lies in the root-only pod
    /// directory, and apps never see stage1's root.
    unmapped_root: Option<u32>,
}

/// The uid the host's root shows as here: `None` in the host's user namespace.
fn unmapped_root_uid() -> Option<u32> {
    let map = std::fs::read_to_string("/proc/self/uid_map").ok()?;
    let identity = map.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"];
    if identity {
        return None;
    }
    let overflow = std::fs::read_to_string("/proc/sys/kernel/overflowuid").ok();
    Some(
        overflow
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(65534),
    )
}

/// What [`EnterServer::fds`] lists, in order, for matching `poll`'s answers.
pub struct PollSlots {
    pending: usize,
    entered: Vec<usize>,
}

impl EnterServer {
    pub fn bind(path: &Path, host_peers_only: bool) -> Result<Self, sys::Error> {
        Ok(Self {
            listener: Listener::bind(path)?,
            pending: Vec::new(),
            entered: Vec::new(),
            host_peers_only,
            unmapped_root: unmapped_root_uid(),
        })
    }

    /// Descriptors to poll for input: the listener, pending connections, live sessions.
    pub fn fds(&self) -> (Vec<BorrowedFd<'_>>, PollSlots) {
        let mut fds = vec![self.listener.as_fd()];
        fds.extend(self.pending.iter().map(Connection::as_fd));
        let mut entered = Vec::new();
        for (i, e) in self.entered.iter().enumerate() {
            if let Some(conn) = &e.conn {
                fds.push(conn.as_fd());
                entered.push(i);
            }
        }
        let slots = PollSlots {
            pending: self.pending.len(),
            entered,
        };
        (fds, slots)
    }

    /// Serves what `poll` found ready (`ready[i]` for the i-th descriptor of [`fds`]).
    pub fn serve(&mut self, ready: &[bool], slots: PollSlots, plan: &Plan, limits: ExecLimits) {
        let mut ready = ready.iter().copied();
        let listener_ready = ready.next().unwrap_or(false);
        let pending_ready: Vec<bool> = ready.by_ref().take(slots.pending).collect();
        let entered_ready: Vec<(usize, bool)> = slots.entered.into_iter().zip(ready).collect();
        for (index, is_ready) in entered_ready {
            if is_ready {
                self.session_input(index);
            }
        }
        let pending = std::mem::take(&mut self.pending);
        for (conn, is_ready) in pending
            .into_iter()
            .zip(pending_ready.into_iter().chain(std::iter::repeat(false)))
        {
            if is_ready {
                self.request(conn, plan, limits);
            } else {
                self.pending.push(conn);
            }
        }
        if listener_ready {
            self.accept();
        }
    }

    fn accept(&mut self) {
        loop {
            let conn = match self.listener.accept() {
                Ok(Some(conn)) => conn,
                Ok(None) => return,
                Err(err) => return say!("enter: {err}"),
            };
            let live =
                self.pending.len() + self.entered.iter().filter(|e| e.conn.is_some()).count();
            let allowed = match conn.peer() {
                Ok((pid, uid)) => {
                    let outside = pid == 0;
                    let root = uid == 0 || (outside && Some(uid) == self.unmapped_root);
                    root && (outside || !self.host_peers_only)
                }
                Err(err) => {
                    say!("enter: {err}");
                    false
                }
            };
            if !allowed {
                say!(
                    "warning: refused an enter request from inside the pod or from a non-root user"
                );
            } else if live >= MAX_CONNECTIONS {
                send(&conn, &error_reply("too many enter sessions at once"), &[]);
            } else {
                self.pending.push(conn);
            }
        }
    }

    /// The first message of a connection: start the command or say why not.
    fn request(&mut self, conn: Connection, plan: &Plan, limits: ExecLimits) {
        let received = match conn.recv(MAX_REQUEST + 1) {
            Ok(Some(received)) => received,
            Ok(None) => return self.pending.push(conn),
            Err(err) => return say!("enter: {err}"),
        };
        if received.data.is_empty() && received.fds.is_empty() {
            return; // the client hung up without asking
        }
        match start(
            &received.data,
            received.truncated,
            received.fds,
            plan,
            limits,
        ) {
            Ok((pid, master)) => {
                let fds: Vec<BorrowedFd<'_>> = master.iter().map(AsFd::as_fd).collect();
                send(&conn, &started_reply(pid), &fds);
                self.entered.push(Entered {
                    conn: Some(conn),
                    pid,
                });
            }
            Err(text) => send(&conn, &error_reply(&text), &[]),
        }
    }

    /// A message on a running session: a signal to forward, or the client went away (the
    /// command keeps running, as an `nsenter` child would).
    fn session_input(&mut self, index: usize) {
        let entered = &mut self.entered[index];
        let Some(conn) = &entered.conn else { return };
        match conn.recv(64) {
            Ok(None) => {}
            Ok(Some(received)) if received.data.is_empty() => entered.conn = None,
            Ok(Some(received)) => match parse_signal(&received.data) {
                Some(signal) => {
                    if let Err(err) = sys::signal_group(entered.pid, signal) {
                        say!("enter: {err}");
                    }
                }
                None => entered.conn = None,
            },
            Err(err) => {
                say!("enter: {err}");
                entered.conn = None;
            }
        }
    }

    /// A child ended: if it was an entered command, report its status. Returns whether it was.
    pub fn reaped(&mut self, pid: Pid, status: WaitStatus) -> bool {
        let Some(index) = self.entered.iter().position(|e| e.pid == pid) else {
            return false;
        };
        let entered = self.entered.swap_remove(index);
        if let Some(conn) = entered.conn {
            send(&conn, &exit_reply(status), &[]);
        }
        true
    }
}

fn send(conn: &Connection, data: &[u8], fds: &[BorrowedFd<'_>]) {
    if let Err(err) = conn.send(data, fds) {
        say!("enter: {err}");
    }
}

/// Starts the requested command; returns its pid and, with a pty, the master for the client.
fn start(
    data: &[u8],
    truncated: bool,
    passed: Vec<OwnedFd>,
    plan: &Plan,
    limits: ExecLimits,
) -> Result<(Pid, Option<OwnedFd>), String> {
    if truncated {
        return Err(format!("request larger than {MAX_REQUEST} bytes"));
    }
    let request = parse_request(data)?;
    let app = plan
        .apps
        .iter()
        .find(|a| a.name == request.app)
        .ok_or_else(|| format!("the pod has no app {:?}", request.app))?;
    if passed.len() != request.passed_fds() {
        return Err(format!(
            "stdio {:?} needs {} descriptors, {} were passed",
            request.stdio,
            request.passed_fds(),
            passed.len()
        ));
    }
    let pty = if request.wants_pty() {
        let (rows, cols) = request.winsize.unwrap_or((24, 80));
        Some(sys::open_pty(rows, cols).map_err(|e| e.to_string())?)
    } else {
        None
    };
    let mut passed = passed.iter();
    let mut fds = Vec::with_capacity(3);
    for slot in request.stdio {
        let fd = match (slot, &pty) {
            (Slot::Pty, Some((_, slave))) => slave.as_fd(),
            // Counted above: there is one passed descriptor per 'f'.
            _ => passed
                .next()
                .expect("bug: one descriptor per passed slot")
                .as_fd(),
        };
        fds.push(fd);
    }
    let stdio = Stdio {
        fds: [fds[0], fds[1], fds[2]],
        controlling_tty: request.stdio[0] == Slot::Pty,
    };
    let env = merged_env(app, &request.env);
    // Entered commands run as root in the app's root directory, like rkt's, and with the
    // app's capabilities: never more than the app itself could have.
    // The app's cgroups, OOM score, no-new-privileges and seccomp filter too.
    let programs = crate::pod::seccomp_programs(app).map_err(|e| e.to_string())?;
    let command = Command {
        root: &app.root,
        cwd: Path::new("/"),
        argv: &request.argv,
        env: &env,
        uid: 0,
        gid: 0,
        groups: &[],
        session: Session::New,
        caps: app.caps,
        confine: crate::pod::confinement(app, &programs),
    };
    let spec = ExecSpec::new(&command, limits).map_err(|e| e.to_string())?;
    let pid = sys::spawn(&spec, Some(&stdio)).map_err(|e| e.to_string())?;
    Ok((pid, pty.map(|(master, _)| master)))
}

#[cfg(test)]
mod tests;
