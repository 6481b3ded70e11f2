//! The only place with `unsafe` and raw `libc` calls: thin safe wrappers that retry EINTR and
//! return errors naming the operation and its path.
//!
//! Spawning an app process (one function, [`spawn`]) reports failures before `execve` through
//! a CLOEXEC pipe:
//!
//! ```text
//!  parent (stage2-init)                       child
//!  ExecSpec: C strings, pointer arrays
//!  pipe2(O_CLOEXEC) ── fork ─────────────────> setsid | setpgid (+ take the terminal)
//!                                              reset signal dispositions and mask
//!                                              unshare(CLONE_NEWNS), mount / MS_REC|MS_SLAVE
//!                                              chroot, chdir, setgroups, setgid, setuid
//!  read(pipe) blocks                           execve ─ ok: the kernel closes the pipe
//!    0 bytes (EOF)     -> started                 └─ failed: write [step u32, errno i32], _exit
//!    8 bytes           -> waitpid, SpawnError
//! ```
//!
//! stage2-init never starts a thread, so after `fork` the child is an exact copy with one thread;
//! it still runs only async-signal-safe calls on memory prepared before `fork`.

use std::ffi::{CString, OsStr, OsString};
use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr;
use std::time::Duration;

use crate::supervisor::{Pid, Signal, WaitStatus};

/// A failed operation: `<op>: <strerror>`, where `op` names the call and its path.
#[derive(Debug)]
pub struct Error {
    op: String,
    source: io::Error,
}

impl Error {
    pub fn new(op: impl Into<String>, source: io::Error) -> Self {
        Self {
            op: op.into(),
            source,
        }
    }

    /// The calling thread's `errno` after a failed call.
    fn last(op: impl Into<String>) -> Self {
        Self::new(op, io::Error::last_os_error())
    }

    fn interrupted(&self) -> bool {
        self.source.kind() == io::ErrorKind::Interrupted
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.op, describe(&self.source))
    }
}

/// The C library's text for an OS error (`strerror`), without Rust's ` (os error N)` suffix.
pub fn describe(err: &io::Error) -> String {
    let Some(errno) = err.raw_os_error() else {
        return err.to_string();
    };
    let mut buf = [0u8; 128];
    // SAFETY: `buf` is writable for `buf.len()` bytes; the XSI strerror_r (the one libc binds)
    // writes a NUL-terminated message into it and touches nothing else.
    let rc = unsafe { libc::strerror_r(errno, buf.as_mut_ptr().cast(), buf.len()) };
    let len = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    if rc != 0 || len == 0 {
        return format!("error {errno}");
    }
    String::from_utf8_lossy(&buf[..len]).into_owned()
}

fn cstring(what: &str, value: &OsStr) -> Result<CString, Error> {
    CString::new(value.as_bytes()).map_err(|_| {
        let err = io::Error::new(io::ErrorKind::InvalidInput, "contains a NUL byte");
        Error::new(format!("{what} {}", value.to_string_lossy()), err)
    })
}

fn signal_number(signal: Signal) -> libc::c_int {
    match signal {
        Signal::Term => libc::SIGTERM,
        Signal::Int => libc::SIGINT,
        Signal::Hup => libc::SIGHUP,
        Signal::Kill => libc::SIGKILL,
    }
}

pub fn signal_name(signal: Signal) -> &'static str {
    match signal {
        Signal::Term => "SIGTERM",
        Signal::Int => "SIGINT",
        Signal::Hup => "SIGHUP",
        Signal::Kill => "SIGKILL",
    }
}

/// Why the main loop woke up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wakeup {
    /// SIGCHLD: reap.
    Child,
    /// SIGTERM, SIGINT or SIGHUP.
    Signal(Signal),
}

/// The signals the main loop waits for, blocked so they queue until `wait` takes them.
pub struct SignalWaiter {
    set: libc::sigset_t,
}

/// Does nothing: installed only so that PID 1 of a pid namespace gets signals sent from the
/// parent namespace (the kernel drops those for an init without a handler). The signals stay
/// blocked, so it never actually runs.
extern "C" fn ignore_signal(_: libc::c_int) {}

impl SignalWaiter {
    /// Blocks SIGCHLD, SIGTERM, SIGINT and SIGHUP with no-op handlers, and ignores SIGTTOU and
    /// SIGTTIN so an interactive app can take the terminal's foreground and stage2-init can
    /// still write warnings from the background. Must run before any child is started.
    pub fn new() -> Result<Self, Error> {
        let waited = [libc::SIGCHLD, libc::SIGTERM, libc::SIGINT, libc::SIGHUP];
        // SAFETY: sigemptyset/sigaddset only write the local set.
        let set = unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for signal in waited {
                libc::sigaddset(&mut set, signal);
            }
            set
        };
        // SAFETY: `set` is initialised; we are the only thread.
        let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, ptr::null_mut()) };
        if rc != 0 {
            // pthread functions return the error number instead of setting errno.
            let err = io::Error::from_raw_os_error(rc);
            return Err(Error::new("pthread_sigmask SIG_BLOCK", err));
        }
        let handler = ignore_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        for signal in waited {
            set_disposition(signal, handler)?;
        }
        for signal in [libc::SIGTTOU, libc::SIGTTIN] {
            set_disposition(signal, libc::SIG_IGN)?;
        }
        Ok(Self { set })
    }

    /// Waits for one of the signals, at most `timeout` if given. `None`: timed out or
    /// interrupted; the caller checks its own deadline.
    pub fn wait(&self, timeout: Option<Duration>) -> Result<Option<Wakeup>, Error> {
        // SAFETY: `info` is plain data the kernel fills in; `self.set` is initialised.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let rc = match timeout {
            Some(timeout) => {
                let ts = libc::timespec {
                    tv_sec: libc::time_t::try_from(timeout.as_secs()).unwrap_or(libc::time_t::MAX),
                    tv_nsec: timeout.subsec_nanos().into(),
                };
                // SAFETY: all pointers are to live, initialised locals or fields.
                unsafe { libc::sigtimedwait(&self.set, &mut info, &ts) }
            }
            // SAFETY: as above.
            None => unsafe { libc::sigwaitinfo(&self.set, &mut info) },
        };
        if rc == -1 {
            let err = io::Error::last_os_error();
            return match err.raw_os_error() {
                Some(libc::EAGAIN | libc::EINTR) => Ok(None),
                _ => Err(Error::new("sigtimedwait", err)),
            };
        }
        Ok(match rc {
            libc::SIGTERM => Some(Wakeup::Signal(Signal::Term)),
            libc::SIGINT => Some(Wakeup::Signal(Signal::Int)),
            libc::SIGHUP => Some(Wakeup::Signal(Signal::Hup)),
            _ => Some(Wakeup::Child),
        })
    }
}

fn set_disposition(signal: libc::c_int, handler: libc::sighandler_t) -> Result<(), Error> {
    // SAFETY: a zeroed sigaction is valid (empty mask, no flags); the handler is either
    // SIG_IGN or an `extern "C" fn(c_int)` that lives for the whole program.
    let rc = unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler;
        libc::sigaction(signal, &action, ptr::null_mut())
    };
    if rc == -1 {
        return Err(Error::last(format!("sigaction {signal}")));
    }
    Ok(())
}

/// Makes orphans of our descendants our children, as they would be for PID 1.
pub fn become_subreaper() -> Result<(), Error> {
    // SAFETY: PR_SET_CHILD_SUBREAPER takes an integer flag and no pointers.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } == -1 {
        return Err(Error::last("prctl PR_SET_CHILD_SUBREAPER"));
    }
    Ok(())
}

/// Reaps one ended child without blocking; `None` when none is left to reap right now.
pub fn reap() -> Result<Option<(Pid, WaitStatus)>, Error> {
    loop {
        let mut raw = 0;
        // SAFETY: `raw` is a live local for the status.
        let pid = unsafe { libc::waitpid(-1, &mut raw, libc::WNOHANG) };
        if pid == -1 {
            let err = Error::last("waitpid");
            match err.source.raw_os_error() {
                Some(libc::ECHILD) => return Ok(None),
                Some(libc::EINTR) => continue,
                _ => return Err(err),
            }
        }
        if pid == 0 {
            return Ok(None);
        }
        let status = if libc::WIFSIGNALED(raw) {
            WaitStatus::Signaled(libc::WTERMSIG(raw))
        } else {
            WaitStatus::Exited(libc::WEXITSTATUS(raw))
        };
        return Ok(Some((pid, status)));
    }
}

/// Sends `signal` to the process group led by `pid`. A group that is already gone is fine.
pub fn kill_group(pid: Pid, signal: Signal) -> Result<(), Error> {
    let op = || format!("kill -{} -{pid}", signal_name(signal));
    if pid <= 1 {
        // kill(-1) would hit every process; no group we lead has such an id.
        return Err(Error::new(op(), io::Error::from_raw_os_error(libc::EINVAL)));
    }
    // SAFETY: kill takes no pointers.
    if unsafe { libc::kill(-pid, signal_number(signal)) } == -1 {
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::ESRCH) {
            return Err(Error::new(op(), err));
        }
    }
    Ok(())
}

/// SIGKILL to every process we may signal. Only for PID 1 of the pod's pid namespace, where
/// that means every process of the pod but ourselves.
pub fn kill_every_process() -> Result<(), Error> {
    // SAFETY: kill takes no pointers.
    if unsafe { libc::kill(-1, libc::SIGKILL) } == -1 {
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::ESRCH) {
            return Err(Error::new("kill -SIGKILL -1", err));
        }
    }
    Ok(())
}

/// Whether the child leads a new session or only a new process group that becomes the
/// terminal's foreground group (interactive apps keep the controlling terminal).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Session {
    New,
    Foreground,
}

/// Everything the child needs, as C data prepared before `fork`.
#[derive(Debug)]
pub struct ExecSpec {
    root: CString,
    cwd: CString,
    argv: Vec<CString>,
    env: Vec<CString>,
    uid: libc::uid_t,
    gid: libc::gid_t,
    groups: Vec<libc::gid_t>,
    session: Session,
}

/// What to run and as whom; borrowed from the plan.
pub struct Command<'a> {
    pub root: &'a Path,
    pub cwd: &'a Path,
    pub argv: &'a [OsString],
    pub env: &'a [OsString],
    pub uid: u32,
    pub gid: u32,
    pub groups: &'a [u32],
    pub session: Session,
}

impl ExecSpec {
    pub fn new(command: &Command<'_>) -> Result<Self, Error> {
        let strings = |what, values: &[OsString]| {
            values
                .iter()
                .map(|v| cstring(what, v))
                .collect::<Result<Vec<_>, _>>()
        };
        let argv = strings("argument", command.argv)?;
        if argv.is_empty() {
            let err = io::Error::new(io::ErrorKind::InvalidInput, "empty command");
            return Err(Error::new("execve", err));
        }
        Ok(Self {
            root: cstring("root", command.root.as_os_str())?,
            cwd: cstring("cwd", command.cwd.as_os_str())?,
            argv,
            env: strings("env", command.env)?,
            uid: command.uid,
            gid: command.gid,
            groups: command.groups.to_vec(),
            session: command.session,
        })
    }
}

/// The child's steps that can fail, in order; sent as a number through the pipe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
enum Step {
    Setsid = 1,
    Setpgid,
    Unshare,
    MakeSlave,
    Chroot,
    Chdir,
    Setgroups,
    Setgid,
    Setuid,
    Execve,
}

impl Step {
    const ALL: [Step; 10] = [
        Step::Setsid,
        Step::Setpgid,
        Step::Unshare,
        Step::MakeSlave,
        Step::Chroot,
        Step::Chdir,
        Step::Setgroups,
        Step::Setgid,
        Step::Setuid,
        Step::Execve,
    ];

    fn from_code(code: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|step| *step as u32 == code)
    }

    /// `<step> <path or value>`, as in `stage2-init: app <name>: chroot /opt/…: <strerror>`.
    fn describe(self, spec: &ExecSpec) -> String {
        let lossy = |s: &CString| String::from_utf8_lossy(s.as_bytes()).into_owned();
        match self {
            Step::Setsid => "setsid".to_owned(),
            Step::Setpgid => "setpgid".to_owned(),
            Step::Unshare => "unshare CLONE_NEWNS".to_owned(),
            Step::MakeSlave => "mount / MS_REC|MS_SLAVE".to_owned(),
            Step::Chroot => format!("chroot {}", lossy(&spec.root)),
            Step::Chdir => format!("chdir {}", lossy(&spec.cwd)),
            Step::Setgroups => format!("setgroups {:?}", spec.groups),
            Step::Setgid => format!("setgid {}", spec.gid),
            Step::Setuid => format!("setuid {}", spec.uid),
            Step::Execve => format!("execve {}", lossy(&spec.argv[0])),
        }
    }
}

const REPORT_LEN: usize = 8;

/// Starts `spec` and waits until it has exec'd (or failed to): on success the process runs
/// the app and its pid is returned; it leads its own process group either way.
pub fn spawn(spec: &ExecSpec) -> Result<Pid, Error> {
    let argv = null_terminated(&spec.argv);
    let envp = null_terminated(&spec.env);
    let (reader, writer) = cloexec_pipe()?;
    // SAFETY: stage2-init is single-threaded, so the child is a consistent copy; it only runs
    // `child`, which makes async-signal-safe calls on data prepared above and never returns.
    let pid = unsafe { libc::fork() };
    if pid == -1 {
        return Err(Error::last("fork"));
    }
    if pid == 0 {
        child(spec, &argv, &envp, writer.as_fd());
    }
    drop(writer);
    let mut report = [0u8; REPORT_LEN];
    let len = read_full(reader.as_fd(), &mut report)?;
    if len == 0 {
        return Ok(pid); // EOF: execve closed the pipe
    }
    // The child failed and exits right away; reap it here so no stray zombie is left.
    wait_for(pid)?;
    let (step, errno) = report.split_at(4);
    let step = u32::from_ne_bytes(step.try_into().expect("bug: 4-byte half"));
    let errno = i32::from_ne_bytes(errno.try_into().expect("bug: 4-byte half"));
    let op = match Step::from_code(step) {
        Some(step) if len == REPORT_LEN => step.describe(spec),
        _ => "start (garbled report from the child)".to_owned(),
    };
    Err(Error::new(op, io::Error::from_raw_os_error(errno)))
}

fn null_terminated(strings: &[CString]) -> Vec<*const libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(ptr::null()))
        .collect()
}

fn cloexec_pipe() -> Result<(OwnedFd, OwnedFd), Error> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 returns.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } == -1 {
        return Err(Error::last("pipe2 O_CLOEXEC"));
    }
    // SAFETY: pipe2 succeeded, so both are fresh descriptors owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Reads until `buf` is full or EOF; returns the bytes read.
fn read_full(fd: BorrowedFd<'_>, buf: &mut [u8]) -> Result<usize, Error> {
    let mut done = 0;
    while done < buf.len() {
        let rest = &mut buf[done..];
        // SAFETY: `rest` is writable for `rest.len()` bytes.
        let n = unsafe { libc::read(fd.as_raw_fd(), rest.as_mut_ptr().cast(), rest.len()) };
        match n {
            -1 => {
                let err = Error::last("read spawn pipe");
                if !err.interrupted() {
                    return Err(err);
                }
            }
            0 => break,
            // n > 0 and at most rest.len(), so it fits.
            n => done += n.unsigned_abs(),
        }
    }
    Ok(done)
}

fn wait_for(pid: Pid) -> Result<(), Error> {
    loop {
        let mut raw = 0;
        // SAFETY: `raw` is a live local for the status.
        if unsafe { libc::waitpid(pid, &mut raw, 0) } != -1 {
            return Ok(());
        }
        let err = Error::last(format!("waitpid {pid}"));
        if !err.interrupted() {
            return Err(err);
        }
    }
}

/// The child between `fork` and `execve`. Async-signal-safe calls only, no allocation, no
/// panics: every failure goes to `fail`.
fn child(
    spec: &ExecSpec,
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
    report: BorrowedFd<'_>,
) -> ! {
    let fail = |step: Step| -> ! {
        // SAFETY: __errno_location returns this thread's errno slot.
        let errno = unsafe { *libc::__errno_location() };
        let mut msg = [0u8; REPORT_LEN];
        msg[..4].copy_from_slice(&(step as u32).to_ne_bytes());
        msg[4..].copy_from_slice(&errno.to_ne_bytes());
        // SAFETY: write and _exit are async-signal-safe; `msg` is a live local. A short or
        // failed write leaves the parent with a garbled report or EOF, both handled there.
        unsafe {
            while libc::write(report.as_raw_fd(), msg.as_ptr().cast(), msg.len()) == -1
                && *libc::__errno_location() == libc::EINTR
            {}
            libc::_exit(127)
        }
    };
    // SAFETY: only async-signal-safe syscalls, on C strings and arrays that were built before
    // fork and outlive this function; argv and envp are NULL-terminated.
    unsafe {
        // Session first, while SIGTTOU is still ignored: tcsetpgrp from a background group
        // would otherwise stop us.
        match spec.session {
            Session::New => {
                if libc::setsid() == -1 {
                    fail(Step::Setsid);
                }
            }
            Session::Foreground => {
                if libc::setpgid(0, 0) == -1 {
                    fail(Step::Setpgid);
                }
                // Best effort: without a controlling terminal there is nothing to take, and
                // the app still runs, just without terminal job control.
                if libc::isatty(0) == 1 {
                    libc::tcsetpgrp(0, libc::getpid());
                }
            }
        }
        // Dispositions before the mask, so nothing pending runs our no-op handler; execve
        // would reset handlers but not SIG_IGN (SIGPIPE, SIGTTOU, SIGTTIN are ignored here).
        for signal in 1..=64 {
            if signal != libc::SIGKILL && signal != libc::SIGSTOP {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = libc::SIG_DFL;
                // Fails only for numbers the C library reserves; nothing to reset there.
                libc::sigaction(signal, &action, ptr::null_mut());
            }
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::pthread_sigmask(libc::SIG_SETMASK, &empty, ptr::null_mut());
        // Each app gets its own mount namespace; slave so mounts stage1 makes later still
        // propagate in, and nothing the app mounts leaks out.
        if libc::unshare(libc::CLONE_NEWNS) == -1 {
            fail(Step::Unshare);
        }
        let flags = libc::MS_REC | libc::MS_SLAVE;
        if libc::mount(ptr::null(), c"/".as_ptr(), ptr::null(), flags, ptr::null()) == -1 {
            fail(Step::MakeSlave);
        }
        if libc::chroot(spec.root.as_ptr()) == -1 {
            fail(Step::Chroot);
        }
        // Absolute, so it resolves inside the new root and leaves no way out of it.
        if libc::chdir(spec.cwd.as_ptr()) == -1 {
            fail(Step::Chdir);
        }
        // Groups and gid while still root; uid last, since it drops the right to change them.
        if libc::setgroups(spec.groups.len(), spec.groups.as_ptr()) == -1 {
            fail(Step::Setgroups);
        }
        if libc::setgid(spec.gid) == -1 {
            fail(Step::Setgid);
        }
        if libc::setuid(spec.uid) == -1 {
            fail(Step::Setuid);
        }
        libc::execve(argv[0], argv.as_ptr(), envp.as_ptr());
        fail(Step::Execve)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_read_like_strerror() {
        let err = Error::new("chroot /x", io::Error::from_raw_os_error(libc::ENOENT));
        assert_eq!(err.to_string(), "chroot /x: No such file or directory");
    }

    #[test]
    fn step_codes_round_trip() {
        for step in Step::ALL {
            assert_eq!(Step::from_code(step as u32), Some(step));
        }
        assert_eq!(Step::from_code(0), None);
    }

    #[test]
    fn kill_group_refuses_pid_one_and_below() {
        assert!(kill_group(1, Signal::Term).is_err());
        assert!(kill_group(0, Signal::Term).is_err());
        assert!(kill_group(-5, Signal::Term).is_err());
    }
}
