//! The `enter` entrypoint: asks the pod's PID 1 (stage2-init) to start a command in an app,
//! then relays the caller's terminal and signals until it exits, and passes its status
//! through (docs/stage-contract.md, "rkt enter").
//!
//! Nothing of this process enters the pod: it never joins the pod's namespaces, so no host
//! binary is ever visible in the pod's PID namespace (the CVE-2019-5736 class), and the
//! command is started by stage2-init with exactly its app's confinement. The request
//! protocol is drawn in stage2-init/src/enter.rs and docs/stage-contract.md.
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use crate::args::EnterArgs;
use crate::console::{Console, ConsoleSlots};
use crate::contract::{ENTER_MAGIC as MAGIC, ENTER_SOCKET, STAGE1_ROOTFS};
use crate::sys::{self, channel};

/// How long to wait for stage2-init's socket after the pod started.
const SOCKET_WAIT: Duration = Duration::from_secs(10);
/// `TERM` for the entered command when the caller has none (rkt's default).
const DEFAULT_TERM: &str = "vt100";

pub fn enter(args: &EnterArgs) -> Result<i32> {
    if !aci::validate::is_ac_name(&args.app) {
        bail!("invalid app name {:?}", args.app);
    }
    let Some(command) = args.command.first() else {
        bail!("no command given to run in app {}", args.app);
    };
    let conn = connect(args.pid)?;
    let slots = ConsoleSlots::detect(true);
    let term = std::env::var("TERM").unwrap_or_else(|_| DEFAULT_TERM.to_string());
    let request = request(&args.app, &slots, &term, &args.command);
    let passed: Vec<BorrowedFd<'_>> = sys::term::stdio()
        .into_iter()
        .zip(slots.stdio)
        .filter(|(_, tty)| !tty)
        .map(|(fd, _)| fd)
        .collect();
    let signals = sys::Signals::block()?;
    channel::send(conn.as_fd(), &request, &passed)?;
    let mut reply = channel::recv(conn.as_fd(), 4096)?;
    let fields = fields(&reply.data);
    let console = match fields.as_slice() {
        ["started", _pid] if slots.wanted() => {
            let master = reply
                .fds
                .pop()
                .ok_or_else(|| anyhow!("the pod sent no terminal for the command"))?;
            Some(Console::new(master, slots)?)
        }
        ["started", _pid] => None,
        ["error", message] => bail!("cannot run {command:?} in app {}: {message}", args.app),
        [] => bail!("the pod exited before starting {command:?}"),
        other => bail!("unexpected reply from the pod: {other:?}"),
    };
    relay(&conn, &signals, console)
}

/// Connects to stage2-init's socket. The socket lives in the pod's stage1 root, which
/// processes in the pod must be assumed to control: it is opened without following any
/// symlink below the pod directory, must be a socket, and is connected to through that
/// descriptor. stage2-init makes it just before the apps start; wait for it a while.
///
/// The stage1 root is mounted in the pod's mount namespace only (docs/stage-contract.md,
/// "Mount namespace"): it is reached through the root of the pod's PID 1, and through the pod
/// directory only where the host sees it (a pod without overlays).
fn connect(pid: i32) -> Result<OwnedFd> {
    let rel = Path::new(STAGE1_ROOTFS).join(ENTER_SOCKET);
    let deadline = Instant::now() + SOCKET_WAIT;
    loop {
        let attempt = channel::open_socket_in_root_of(pid, Path::new(ENTER_SOCKET))
            .or_else(|_| channel::open_socket(&rel))
            .and_then(|socket| channel::connect(socket.as_fd()));
        match attempt {
            Ok(conn) => return Ok(conn),
            Err(e)
                if Instant::now() < deadline
                    && matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ECONNREFUSED)) =>
            {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!(
                        "cannot reach the pod's init at {}: is the pod running?",
                        rel.display()
                    )
                })
            }
        }
    }
}

/// The request message (format in stage2-init/src/enter.rs).
fn request(app: &str, slots: &ConsoleSlots, term: &str, argv: &[String]) -> Vec<u8> {
    let stdio: String = slots
        .stdio
        .iter()
        .map(|tty| if *tty { 'p' } else { 'f' })
        .collect();
    let mut fields: Vec<String> = vec![
        MAGIC.into(),
        "app".into(),
        app.into(),
        "stdio".into(),
        stdio,
    ];
    if slots.wanted() {
        let (rows, cols) = slots.size();
        fields.extend(["winsize".into(), rows.to_string(), cols.to_string()]);
    }
    fields.extend(["env".into(), "1".into(), format!("TERM={term}")]);
    fields.extend(["argv".into(), argv.len().to_string()]);
    fields.extend(argv.iter().cloned());
    let mut out = Vec::new();
    for field in fields {
        out.extend_from_slice(field.as_bytes());
        out.push(0);
    }
    out
}

/// The NUL-terminated fields of a reply.
fn fields(data: &[u8]) -> Vec<&str> {
    data.strip_suffix(b"\0")
        .map(|body| {
            body.split(|b| *b == 0)
                .map(|f| std::str::from_utf8(f).unwrap_or("?"))
                .collect()
        })
        .unwrap_or_default()
}

/// Until the command exits: the console, signals forwarded to the command, and its status.
fn relay(conn: &OwnedFd, signals: &sys::Signals, mut console: Option<Console>) -> Result<i32> {
    loop {
        let mut fds = vec![
            sys::pollfd(signals.as_fd(), libc::POLLIN),
            sys::pollfd(conn.as_fd(), libc::POLLIN),
        ];
        if let Some(c) = &console {
            fds.extend(c.poll_fds());
        }
        sys::poll(&mut fds, -1)?;
        if let Some(c) = console.as_mut() {
            c.on_ready(&fds[2..]);
        }
        if fds[0].revents != 0 {
            for sig in signals.take() {
                match sig {
                    libc::SIGWINCH if console.is_some() => {
                        console.as_ref().map_or((), Console::resize)
                    }
                    libc::SIGCHLD | libc::SIGWINCH => {}
                    sig => {
                        let msg = format!("signal\0{sig}\0");
                        // The command may have ended already; its status follows.
                        let _ = channel::send(conn.as_fd(), msg.as_bytes(), &[]);
                    }
                }
            }
        }
        if fds[1].revents == 0 {
            continue;
        }
        let reply = channel::recv(conn.as_fd(), 4096)?;
        if let Some(c) = console.as_mut() {
            c.drain();
        }
        return match fields(&reply.data).as_slice() {
            ["exit", status] => status
                .parse()
                .map_err(|_| anyhow!("unexpected exit status {status:?} from the pod")),
            [] => bail!("the pod exited while the command was running"),
            other => bail!("unexpected message from the pod: {other:?}"),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_follow_the_protocol() {
        let slots = ConsoleSlots {
            stdio: [false, false, false],
        };
        let req = request(
            "web",
            &slots,
            "xterm",
            &["/bin/sh".into(), "-c".into(), "a\nb".into()],
        );
        let expected: &[&str] = &[
            MAGIC,
            "app",
            "web",
            "stdio",
            "fff",
            "env",
            "1",
            "TERM=xterm",
            "argv",
            "3",
            "/bin/sh",
            "-c",
            "a\nb",
        ];
        let mut encoded = Vec::new();
        for f in expected {
            encoded.extend_from_slice(f.as_bytes());
            encoded.push(0);
        }
        assert_eq!(req, encoded);
        // The same request stage2-init's reader is tested against.
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/golden/enter-request");
        if std::env::var_os("BLESS").is_some() {
            std::fs::write(path, &req).unwrap();
        }
        assert_eq!(std::fs::read(path).expect("docs/golden/enter-request"), req);
        assert_eq!(fields(b"exit\x003\x00"), ["exit", "3"]);
        assert!(fields(b"").is_empty());
    }
}
