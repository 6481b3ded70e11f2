//! The only place in stage1 that talks to the kernel directly: thin wrappers whose errors name
//! the operation and its paths. [`pod`] holds the pod-creation ops run after `fork`.
mod bpf;
pub mod channel;
mod console;
mod pod;
mod report;
mod resolve;
pub mod term;

pub use bpf::{attach_device_program, load_device_program};
pub use pod::{
    idmapped_tree, spawn_pod, ConsoleOp, MakeTarget, Op, Target, MOUNT_ATTR_NODEV,
    MOUNT_ATTR_RDONLY,
};
pub use term::RawMode;

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use anyhow::{Context, Result};

pub use libc::{
    CLONE_NEWIPC, CLONE_NEWNET, CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWUTS, MS_BIND, MS_NODEV,
    MS_NOEXEC, MS_NOSUID, MS_RDONLY, MS_REC, MS_REMOUNT, MS_SLAVE, MS_STRICTATIME,
};

/// `struct open_how` of openat2(2), and the `RESOLVE_*` flags stage1 uses.
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_NO_SYMLINKS: u64 = 0x04;
const RESOLVE_BENEATH: u64 = 0x08;
const RESOLVE_IN_ROOT: u64 = 0x10;

pub fn cstring(s: &str) -> Result<CString> {
    CString::new(s).with_context(|| format!("{s:?} contains a NUL byte"))
}

pub fn cpath(p: &Path) -> Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .with_context(|| format!("{} contains a NUL byte", p.display()))
}

/// An `execve` whose argument arrays were built before `fork`.
pub struct PreparedExec {
    path: CString,
    _args: Vec<CString>,
    _env: Vec<CString>,
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
}

impl PreparedExec {
    pub fn new(path: &str, args: &[String], env: &[(String, String)]) -> Result<PreparedExec> {
        let args = args
            .iter()
            .map(|a| cstring(a))
            .collect::<Result<Vec<_>>>()?;
        let env = env
            .iter()
            .map(|(k, v)| cstring(&format!("{k}={v}")))
            .collect::<Result<Vec<_>>>()?;
        let mut argv: Vec<_> = args.iter().map(|a| a.as_ptr()).collect();
        argv.push(std::ptr::null());
        let mut envp: Vec<_> = env.iter().map(|e| e.as_ptr()).collect();
        envp.push(std::ptr::null());
        Ok(PreparedExec {
            path: cstring(path)?,
            _args: args,
            _env: env,
            argv,
            envp,
        })
    }
}

fn errno() -> i32 {
    io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// Signals stage1 takes from the kernel and forwards to the pod: everything catchable except
/// SIGCHLD and the synchronous fault signals, so nothing but SIGKILL ends stage1 (and with it,
/// through the parent-death signal, the pod) behind the pod's back.
pub fn forwarded() -> Vec<libc::c_int> {
    let synchronous = [
        libc::SIGKILL,
        libc::SIGSTOP,
        libc::SIGCHLD,
        libc::SIGSEGV,
        libc::SIGBUS,
        libc::SIGFPE,
        libc::SIGILL,
        libc::SIGTRAP,
        libc::SIGSYS,
    ];
    let mut signals: Vec<libc::c_int> = (1..32).filter(|s| !synchronous.contains(s)).collect();
    signals.extend(libc::SIGRTMIN()..=libc::SIGRTMAX());
    signals
}

fn signal_set(signals: &[libc::c_int]) -> libc::sigset_t {
    // SAFETY: sigset_t is plain data initialised by sigemptyset before use.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in signals {
            libc::sigaddset(&mut set, *s);
        }
        set
    }
}

/// Blocked signals, read from a signalfd: forwarded ones and SIGCHLD.
pub struct Signals {
    fd: OwnedFd,
}

impl Signals {
    /// Blocks the forwarded signals and SIGCHLD and opens a signalfd for them. Must run
    /// before the pod's PID 1 is forked, so that no signal is missed.
    pub fn block() -> Result<Signals> {
        let mut all = forwarded();
        all.push(libc::SIGCHLD);
        let set = signal_set(&all);
        // SAFETY: `set` is initialised; the old mask is not needed.
        if unsafe { libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) } != 0 {
            return Err(io::Error::last_os_error()).context("cannot block signals");
        }
        // SAFETY: `set` is initialised; -1 asks for a new descriptor.
        let fd = unsafe { libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) };
        if fd < 0 {
            return Err(io::Error::last_os_error()).context("cannot create a signalfd");
        }
        // SAFETY: signalfd just returned this descriptor, owned by nobody else.
        Ok(Signals {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The signals received since the last call.
    pub fn take(&self) -> Vec<libc::c_int> {
        let mut out = Vec::new();
        loop {
            // SAFETY: a zeroed signalfd_siginfo is valid plain data for read to fill.
            let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
            let size = std::mem::size_of::<libc::signalfd_siginfo>();
            // SAFETY: `info` is writable for `size` bytes.
            let n = unsafe {
                libc::read(
                    self.fd.as_raw_fd(),
                    std::ptr::addr_of_mut!(info).cast(),
                    size,
                )
            };
            if n < 0 && errno() == libc::EINTR {
                continue;
            }
            if n < 0 || n as usize != size {
                return out;
            }
            out.push(info.ssi_signo as libc::c_int);
        }
    }
}

/// Waits until one of `fds` is ready or `timeout_ms` passes (-1: no timeout); `revents` is
/// filled in. An interrupted wait returns as if nothing were ready.
pub fn poll(fds: &mut [libc::pollfd], timeout_ms: libc::c_int) -> Result<()> {
    // SAFETY: `fds` is a live slice of pollfd of the length passed.
    let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    if rc < 0 && errno() != libc::EINTR {
        return Err(io::Error::last_os_error()).context("poll failed");
    }
    Ok(())
}

/// A `pollfd` for `fd` waiting for `events`.
pub fn pollfd(fd: BorrowedFd<'_>, events: libc::c_short) -> libc::pollfd {
    libc::pollfd {
        fd: fd.as_raw_fd(),
        events,
        revents: 0,
    }
}

/// Exit state of a child.
pub enum Exit {
    Code(i32),
    Signal(i32),
}

/// Non-blocking wait for one specific child.
pub fn try_wait(pid: i32) -> Result<Option<Exit>> {
    let mut status = 0;
    loop {
        // SAFETY: `status` is a valid out pointer.
        let rc = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if rc < 0 {
            if errno() == libc::EINTR {
                continue;
            }
            return Err(io::Error::last_os_error())
                .with_context(|| format!("cannot wait for process {pid}"));
        }
        if rc == 0 {
            return Ok(None);
        }
        if libc::WIFEXITED(status) {
            return Ok(Some(Exit::Code(libc::WEXITSTATUS(status))));
        }
        if libc::WIFSIGNALED(status) {
            return Ok(Some(Exit::Signal(libc::WTERMSIG(status))));
        }
    }
}

/// Blocking wait for one specific child.
pub fn wait(pid: i32) -> Result<Exit> {
    let mut status = 0;
    loop {
        // SAFETY: `status` is a valid out pointer.
        let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
        if rc < 0 {
            if errno() == libc::EINTR {
                continue;
            }
            return Err(io::Error::last_os_error())
                .with_context(|| format!("cannot wait for process {pid}"));
        }
        if libc::WIFEXITED(status) {
            return Ok(Exit::Code(libc::WEXITSTATUS(status)));
        }
        if libc::WIFSIGNALED(status) {
            return Ok(Exit::Signal(libc::WTERMSIG(status)));
        }
    }
}

pub fn kill(pid: i32, sig: libc::c_int) -> io::Result<()> {
    // SAFETY: kill has no memory-safety preconditions.
    if unsafe { libc::kill(pid, sig) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Marks a descriptor close-on-exec so no app inherits it.
pub fn set_cloexec(fd: RawFd) -> Result<()> {
    // SAFETY: fcntl on a descriptor number; failure is reported, not UB.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error())
            .with_context(|| format!("cannot set close-on-exec on fd {fd}"));
    }
    Ok(())
}

/// Clears close-on-exec: stage2-init inherits the descriptor (the app cgroups' `cgroup.procs`).
pub fn set_inheritable(fd: RawFd) -> Result<()> {
    // SAFETY: fcntl on a descriptor number; failure is reported, not UB.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, 0) } != 0 {
        return Err(io::Error::last_os_error())
            .with_context(|| format!("cannot clear close-on-exec on fd {fd}"));
    }
    Ok(())
}

/// Takes ownership of the inherited lock descriptor (it stays open until stage1 exits).
pub fn adopt_lock_fd(fd: RawFd) -> Result<OwnedFd> {
    // SAFETY: fcntl(F_GETFD) only checks that the number is an open descriptor.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(io::Error::last_os_error())
            .with_context(|| format!("RKT_LOCK_FD {fd} is not an open descriptor"));
    }
    set_cloexec(fd)?;
    // SAFETY: stage0 handed this descriptor to us and nothing else in stage1 owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens the regular file `path` below the directory `dir` for reading, refusing every
/// symlink and `..` escape on the way (`openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`).
pub fn open_file_beneath(dir: BorrowedFd<'_>, path: &str) -> Result<std::fs::File> {
    let c = cstring(path)?;
    let how = OpenHow {
        flags: (libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW) as u64,
        mode: 0,
        resolve: RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
    };
    // SAFETY: valid C string and open_how for the duration of the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir.as_raw_fd(),
            c.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error()).with_context(|| format!("cannot open {path}"));
    }
    // SAFETY: openat2 just returned this descriptor, owned by nobody else.
    Ok(std::fs::File::from(unsafe {
        OwnedFd::from_raw_fd(fd as RawFd)
    }))
}

/// Marks every descriptor from `first` up close-on-exec (`close_range` with
/// `CLOSE_RANGE_CLOEXEC`), so that an `exec` keeps only what is explicitly made inheritable.
pub fn cloexec_from(first: u32) -> Result<()> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range only changes descriptor flags.
    let rc = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, CLOSE_RANGE_CLOEXEC) };
    if rc != 0 {
        return Err(io::Error::last_os_error()).context("cannot mark descriptors close-on-exec");
    }
    Ok(())
}

/// Executes the program open at `program` (`execveat` with `AT_EMPTY_PATH`). Returns only if
/// that failed.
pub fn exec_fd(
    program: BorrowedFd<'_>,
    argv: &[String],
    env: &[(String, String)],
) -> anyhow::Error {
    let prepared = match PreparedExec::new("", argv, env) {
        Ok(p) => p,
        Err(e) => return e,
    };
    // SAFETY: argv and envp are NULL-terminated arrays of C strings kept alive by `prepared`.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            program.as_raw_fd(),
            c"".as_ptr(),
            prepared.argv.as_ptr(),
            prepared.envp.as_ptr(),
            libc::AT_EMPTY_PATH,
        );
    }
    anyhow::Error::new(io::Error::last_os_error()).context("cannot execute the program")
}
