//! The only place with `unsafe` and raw `libc` calls: thin safe wrappers that retry EINTR and
//! return errors naming the operation and its path. Starting an app process lives in
//! [`spawn`](mod@spawn), the rest here.

use std::ffi::{CString, OsStr, OsString};
use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::ptr;
use std::time::Duration;

use crate::supervisor::{Pid, Signal, WaitStatus};

mod caps;
mod confine;
mod pty;
mod root;
mod socket;
mod spawn;

pub use confine::{read_programs, Program};
pub use pty::open_pty;
pub use socket::{Connection, Listener};
pub use spawn::{spawn, Command, Confinement, ExecLimits, ExecSpec, Session, Stdio};

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
        Signal::Usr1 => libc::SIGUSR1,
        Signal::Usr2 => libc::SIGUSR2,
        Signal::Winch => libc::SIGWINCH,
        Signal::Quit => libc::SIGQUIT,
        Signal::Cont => libc::SIGCONT,
        Signal::Kill => libc::SIGKILL,
    }
}

pub fn signal_name(signal: Signal) -> &'static str {
    match signal {
        Signal::Term => "SIGTERM",
        Signal::Int => "SIGINT",
        Signal::Hup => "SIGHUP",
        Signal::Usr1 => "SIGUSR1",
        Signal::Usr2 => "SIGUSR2",
        Signal::Winch => "SIGWINCH",
        Signal::Quit => "SIGQUIT",
        Signal::Cont => "SIGCONT",
        Signal::Kill => "SIGKILL",
    }
}

/// Why the main loop woke up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wakeup {
    /// SIGCHLD: reap.
    Child,
    /// One of [`Signal::RECEIVED`].
    Signal(Signal),
}

/// The signals the main loop waits for: blocked, so they queue until read from a signalfd.
pub struct SignalWaiter {
    fd: OwnedFd,
}

/// Does nothing: installed only so that PID 1 of a pid namespace gets signals sent from the
/// parent namespace (the kernel drops those for an init without a handler). The signals stay
/// blocked, so it never actually runs.
extern "C" fn ignore_signal(_: libc::c_int) {}

impl SignalWaiter {
    /// Blocks SIGCHLD and [`Signal::RECEIVED`] with no-op handlers, opens a signalfd for them,
    /// and ignores SIGTTOU and SIGTTIN so an interactive app can take the terminal's
    /// foreground and stage2-init can still write warnings from the background. Must run
    /// before any child is started.
    pub fn new() -> Result<Self, Error> {
        let received = Signal::RECEIVED.map(signal_number);
        let waited: Vec<libc::c_int> = std::iter::once(libc::SIGCHLD).chain(received).collect();
        // SAFETY: sigemptyset/sigaddset only write the local set.
        let set = unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for &signal in &waited {
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
        for &signal in &waited {
            set_disposition(signal, handler)?;
        }
        for signal in [libc::SIGTTOU, libc::SIGTTIN] {
            set_disposition(signal, libc::SIG_IGN)?;
        }
        // SAFETY: `set` is initialised; -1 asks for a new descriptor.
        let fd = unsafe { libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) };
        if fd == -1 {
            return Err(Error::last("signalfd"));
        }
        // SAFETY: signalfd just returned this descriptor, owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Self { fd })
    }

    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Every signal queued so far (standard signals coalesce: one SIGCHLD may stand for many
    /// children).
    pub fn take(&self) -> Result<Vec<Wakeup>, Error> {
        let mut out = Vec::new();
        loop {
            // SAFETY: a zeroed signalfd_siginfo is valid plain data for read to fill.
            let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
            let size = std::mem::size_of::<libc::signalfd_siginfo>();
            // SAFETY: `info` is writable for `size` bytes.
            let n =
                unsafe { libc::read(self.fd.as_raw_fd(), ptr::addr_of_mut!(info).cast(), size) };
            if n == -1 {
                let err = io::Error::last_os_error();
                return match err.raw_os_error() {
                    Some(libc::EAGAIN) => Ok(out),
                    Some(libc::EINTR) => continue,
                    _ => Err(Error::new("read signalfd", err)),
                };
            }
            if n.unsigned_abs() != size {
                return Ok(out);
            }
            let number = info.ssi_signo as libc::c_int;
            let received = Signal::RECEIVED
                .into_iter()
                .find(|signal| signal_number(*signal) == number);
            out.push(received.map_or(Wakeup::Child, Wakeup::Signal));
        }
    }
}

/// Waits until one of `fds` is ready or `timeout` passes; `revents` is filled in. An
/// interrupted wait returns as if it timed out: callers re-check their deadlines.
pub fn poll(fds: &mut [libc::pollfd], timeout: Option<Duration>) -> Result<(), Error> {
    let millis = timeout.map_or(-1, |t| {
        // Round up, so a deadline is never polled for just before it is due.
        let ms = t.as_micros().div_ceil(1000);
        libc::c_int::try_from(ms).unwrap_or(libc::c_int::MAX)
    });
    // SAFETY: `fds` is a live slice of pollfd of the length passed.
    let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, millis) };
    if rc == -1 && io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
        return Err(Error::last("poll"));
    }
    Ok(())
}

/// A `pollfd` waiting for input on `fd`.
pub fn readable(fd: BorrowedFd<'_>) -> libc::pollfd {
    libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    }
}

/// Sends `signal` (a raw number from an enter client) to the process group led by `pid`.
pub fn signal_group(pid: Pid, signal: libc::c_int) -> Result<(), Error> {
    if pid <= 1 || !(1..=64).contains(&signal) {
        let err = io::Error::from_raw_os_error(libc::EINVAL);
        return Err(Error::new(format!("kill -{signal} -{pid}"), err));
    }
    // SAFETY: kill takes no pointers.
    if unsafe { libc::kill(-pid, signal) } == -1 {
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::ESRCH) {
            return Err(Error::new(format!("kill -{signal} -{pid}"), err));
        }
    }
    Ok(())
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

/// Keeps other processes of the same uid from reading our memory, descriptors and root
/// through /proc or ptrace: only CAP_SYS_PTRACE can. An app's own execve makes the app
/// dumpable again (the kernel resets it for a binary that is not set-uid).
pub fn set_not_dumpable() -> Result<(), Error> {
    let off: libc::c_ulong = 0;
    // SAFETY: PR_SET_DUMPABLE takes an integer and no pointers; unused arguments are 0.
    if unsafe {
        libc::prctl(
            libc::PR_SET_DUMPABLE,
            off,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    } == -1
    {
        return Err(Error::last("prctl PR_SET_DUMPABLE 0"));
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

/// A signalfd (blocking reads) for the signals this process started with blocked, SIGCHLD
/// always among them: the waiter's, which stage1 blocked before it created the pod, so that
/// none sent around the `exec` is lost (docs/stage-contract.md, "The waiter").
pub fn inherited_signals() -> Result<OwnedFd, Error> {
    // SAFETY: sigemptyset initialises the set; pthread_sigmask fills in the current mask and
    // then blocks SIGCHLD too (it normally is already).
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        let rc = libc::pthread_sigmask(libc::SIG_BLOCK, ptr::null(), &mut set);
        if rc != 0 {
            return Err(Error::new(
                "pthread_sigmask",
                io::Error::from_raw_os_error(rc),
            ));
        }
        libc::sigaddset(&mut set, libc::SIGCHLD);
        let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, ptr::null_mut());
        if rc != 0 {
            return Err(Error::new(
                "pthread_sigmask",
                io::Error::from_raw_os_error(rc),
            ));
        }
        set
    };
    // SAFETY: `set` is initialised; -1 asks for a new descriptor.
    let fd = unsafe { libc::signalfd(-1, &set, libc::SFD_CLOEXEC) };
    if fd == -1 {
        return Err(Error::last("signalfd"));
    }
    // SAFETY: signalfd just returned this descriptor, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The next signal from a blocking signalfd.
pub fn next_signal(fd: BorrowedFd<'_>) -> Result<libc::c_int, Error> {
    loop {
        // SAFETY: a zeroed signalfd_siginfo is valid plain data for read to fill.
        let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<libc::signalfd_siginfo>();
        // SAFETY: `info` is writable for `size` bytes.
        let n = unsafe { libc::read(fd.as_raw_fd(), ptr::addr_of_mut!(info).cast(), size) };
        if n == -1 && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        if n == -1 {
            return Err(Error::last("read signalfd"));
        }
        return Ok(info.ssi_signo as libc::c_int);
    }
}

/// Whether the child `pid` has ended, without blocking. An error if it is not our child.
pub fn try_wait(pid: Pid) -> Result<Option<WaitStatus>, Error> {
    loop {
        let mut raw = 0;
        // SAFETY: `raw` is a live local for the status.
        let rc = unsafe { libc::waitpid(pid, &mut raw, libc::WNOHANG) };
        if rc == -1 && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        if rc == -1 {
            return Err(Error::last(format!("waitpid {pid}")));
        }
        if rc == 0 {
            return Ok(None);
        }
        return Ok(Some(if libc::WIFSIGNALED(raw) {
            WaitStatus::Signaled(libc::WTERMSIG(raw))
        } else {
            WaitStatus::Exited(libc::WEXITSTATUS(raw))
        }));
    }
}

/// Sends the raw signal `signal` to `pid`; a process already gone is fine.
pub fn send_signal(pid: Pid, signal: libc::c_int) -> Result<(), Error> {
    // SAFETY: kill takes no pointers.
    if unsafe { libc::kill(pid, signal) } == -1 {
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::ESRCH) {
            return Err(Error::new(format!("kill -{signal} {pid}"), err));
        }
    }
    Ok(())
}

/// Executes the program open at descriptor `program` with `argv` and our environment
/// (`execveat` with `AT_EMPTY_PATH`); the descriptor is closed by the `exec`. Returns only
/// if that failed.
pub fn exec_fd(program: libc::c_int, argv: &[OsString]) -> Error {
    let to_c = |s: &OsStr| CString::new(s.as_bytes()).ok();
    let Some(args) = argv.iter().map(|a| to_c(a)).collect::<Option<Vec<_>>>() else {
        return Error::new("execveat", io::Error::from_raw_os_error(libc::EINVAL));
    };
    let env: Vec<CString> = std::env::vars_os()
        .filter_map(|(k, v)| {
            let mut kv = k;
            kv.push("=");
            kv.push(v);
            to_c(&kv)
        })
        .collect();
    let mut argp: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argp.push(ptr::null());
    let mut envp: Vec<*const libc::c_char> = env.iter().map(|e| e.as_ptr()).collect();
    envp.push(ptr::null());
    // SAFETY: fcntl on a descriptor number, then execveat with NULL-terminated arrays of C
    // strings that live until the call returns.
    unsafe {
        libc::fcntl(program, libc::F_SETFD, libc::FD_CLOEXEC);
        libc::syscall(
            libc::SYS_execveat,
            program,
            c"".as_ptr(),
            argp.as_ptr(),
            envp.as_ptr(),
            libc::AT_EMPTY_PATH,
        );
    }
    Error::last(format!("execveat fd {program}"))
}

/// Sets our name (`comm`, at most 15 bytes), which `ps` and `top` show.
pub fn set_name(name: &std::ffi::CStr) {
    // SAFETY: PR_SET_NAME reads a NUL-terminated string.
    unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr()) };
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
    fn signals_have_distinct_numbers_and_names() {
        let all = Signal::RECEIVED.into_iter().chain([Signal::Kill]);
        let mut numbers: Vec<_> = all.clone().map(signal_number).collect();
        let mut names: Vec<_> = all.map(signal_name).collect();
        numbers.sort_unstable();
        numbers.dedup();
        names.sort_unstable();
        names.dedup();
        assert_eq!((numbers.len(), names.len()), (9, 9));
        assert_eq!(signal_number(Signal::Usr1), libc::SIGUSR1);
        assert_eq!(signal_name(Signal::Winch), "SIGWINCH");
    }

    #[test]
    fn kill_group_refuses_pid_one_and_below() {
        assert!(kill_group(1, Signal::Term).is_err());
        assert!(kill_group(0, Signal::Term).is_err());
        assert!(kill_group(-5, Signal::Term).is_err());
    }
}
