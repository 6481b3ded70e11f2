//! Starting an app process: one function, [`spawn`], reports failures before `execve` through
//! a CLOEXEC pipe.
//!
//! ```text
//!  parent (stage2-init)                       child
//!  ExecSpec: C strings, pointer arrays,
//!  ExecLimits (cap_last_cap, fd limit)
//!  pipe2(O_CLOEXEC) ── fork ─────────────────> setsid | setpgid (+ take the terminal)
//!                                              reset signal dispositions and mask
//!                                              unshare(CLONE_NEWNS), mount / MS_REC|MS_SLAVE
//!                                              chroot, chdir, setgroups, setgid
//!                                              [caps] PR_CAPBSET_DROP all but the kept ones
//!                                              setuid
//!                                              [caps] capset, PR_CAP_AMBIENT_CLEAR_ALL
//!                                              close_range(3, ~0, CLOSE_RANGE_CLOEXEC)
//!  read(pipe) blocks                           execve ─ ok: the kernel closes the pipe
//!    0 bytes (EOF)     -> started                 └─ failed: write [step u32, errno i32], _exit
//!    8 bytes           -> waitpid, SpawnError
//! ```
//!
//! stage2-init never starts a thread, so after `fork` the child is an exact copy with one thread;
//! it still runs only async-signal-safe calls (raw syscalls) on memory prepared before `fork`.

use std::ffi::{CString, OsString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::ptr;

use super::{cstring, Error};
use crate::plan::CapSet;
use crate::supervisor::Pid;

/// The highest capability number the running kernel knows.
const LAST_CAP_PATH: &str = "/proc/sys/kernel/cap_last_cap";

/// The kernel's default ceiling for descriptor numbers (`fs.nr_open`), which also bounds the
/// one-by-one close-on-exec fallback when RLIMIT_NOFILE is unlimited.
const FD_LIMIT_MAX: libc::rlim_t = 1 << 20;

/// `_LINUX_CAPABILITY_VERSION_3` of `<linux/capability.h>`: 64-bit sets as two 32-bit words.
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// `struct __user_cap_header_struct`.
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

/// `struct __user_cap_data_struct`; version 3 takes two: bits 0–31, then bits 32–63.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Whether the child leads a new session or only a new process group that becomes the
/// terminal's foreground group (interactive apps keep the controlling terminal).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Session {
    New,
    Foreground,
}

/// What the child learns from the kernel before `fork`, since it may not open files after.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExecLimits {
    /// Capabilities 0 to this one are dropped from the bounding set unless kept.
    last_cap: u32,
    /// Without close_range, descriptors 3 up to (not including) this one are marked
    /// close-on-exec one by one.
    fd_limit: libc::c_int,
}

impl ExecLimits {
    /// Reads `cap_last_cap` and RLIMIT_NOFILE. Never fails: without `/proc` every number up to
    /// [`CapSet::MAX`] is tried (the kernel answers EINVAL for those it lacks, which is
    /// ignored), so no capability the kernel knows can stay in the bounding set.
    pub fn read() -> Self {
        let last_cap = std::fs::read_to_string(LAST_CAP_PATH)
            .ok()
            .and_then(|text| text.trim().parse::<u32>().ok())
            .map_or(CapSet::MAX, |cap| cap.min(CapSet::MAX));
        // SAFETY: a zeroed rlimit is valid plain data; getrlimit only writes it.
        let mut limit: libc::rlimit = unsafe { std::mem::zeroed() };
        // SAFETY: `limit` is a live local.
        let fd_limit = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
            limit.rlim_cur.min(FD_LIMIT_MAX)
        } else {
            FD_LIMIT_MAX
        };
        Self {
            last_cap,
            // At most 2^20, so it fits.
            fd_limit: libc::c_int::try_from(fd_limit).unwrap_or(libc::c_int::MAX),
        }
    }
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
    /// The capabilities to keep, as a 64-bit mask; `None` leaves them alone.
    caps: Option<u64>,
    limits: ExecLimits,
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
    pub caps: Option<CapSet>,
}

impl ExecSpec {
    pub fn new(command: &Command<'_>, limits: ExecLimits) -> Result<Self, Error> {
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
            caps: command.caps.map(CapSet::bits),
            limits,
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
    DropBounding,
    Setuid,
    Capget,
    Capset,
    ClearAmbient,
    CloexecFds,
    Execve,
}

impl Step {
    const ALL: [Step; 15] = [
        Step::Setsid,
        Step::Setpgid,
        Step::Unshare,
        Step::MakeSlave,
        Step::Chroot,
        Step::Chdir,
        Step::Setgroups,
        Step::Setgid,
        Step::DropBounding,
        Step::Setuid,
        Step::Capget,
        Step::Capset,
        Step::ClearAmbient,
        Step::CloexecFds,
        Step::Execve,
    ];

    fn from_code(code: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|step| *step as u32 == code)
    }

    /// `<step> <path or value>`, as in `stage2-init: app <name>: chroot /opt/…: <strerror>`.
    fn describe(self, spec: &ExecSpec) -> String {
        let lossy = |s: &CString| String::from_utf8_lossy(s.as_bytes()).into_owned();
        let caps = spec.caps.unwrap_or_default();
        match self {
            Step::Setsid => "setsid".to_owned(),
            Step::Setpgid => "setpgid".to_owned(),
            Step::Unshare => "unshare CLONE_NEWNS".to_owned(),
            Step::MakeSlave => "mount / MS_REC|MS_SLAVE".to_owned(),
            Step::Chroot => format!("chroot {}", lossy(&spec.root)),
            Step::Chdir => format!("chdir {}", lossy(&spec.cwd)),
            Step::Setgroups => format!("setgroups {:?}", spec.groups),
            Step::Setgid => format!("setgid {}", spec.gid),
            Step::DropBounding => format!("prctl PR_CAPBSET_DROP (keeping {caps:#x})"),
            Step::Setuid => format!("setuid {}", spec.uid),
            Step::Capget => "capget".to_owned(),
            Step::Capset => format!("capset (keeping {caps:#x})"),
            Step::ClearAmbient => "prctl PR_CAP_AMBIENT_CLEAR_ALL".to_owned(),
            Step::CloexecFds => "mark descriptors 3 and up close-on-exec".to_owned(),
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

/// This thread's `errno`; async-signal-safe.
fn errno() -> libc::c_int {
    // SAFETY: __errno_location returns this thread's errno slot, valid for the thread's life.
    unsafe { *libc::__errno_location() }
}

/// `Err(step)` for a raw call's `-1`, leaving `errno` as the call set it.
fn check(rc: libc::c_long, step: Step) -> Result<(), Step> {
    if rc == -1 {
        Err(step)
    } else {
        Ok(())
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
        let code = errno();
        let mut msg = [0u8; REPORT_LEN];
        msg[..4].copy_from_slice(&(step as u32).to_ne_bytes());
        msg[4..].copy_from_slice(&code.to_ne_bytes());
        // SAFETY: write and _exit are async-signal-safe; `msg` is a live local. A short or
        // failed write leaves the parent with a garbled report or EOF, both handled there.
        unsafe {
            while libc::write(report.as_raw_fd(), msg.as_ptr().cast(), msg.len()) == -1
                && errno() == libc::EINTR
            {}
            libc::_exit(127)
        }
    };
    if let Err(step) = prepare(spec) {
        fail(step);
    }
    // SAFETY: argv and envp are NULL-terminated arrays of C strings built before fork that
    // outlive this call; execve returns only on failure.
    unsafe { libc::execve(argv[0], argv.as_ptr(), envp.as_ptr()) };
    fail(Step::Execve)
}

/// Everything the child does before `execve`, in order; `Err` names the step that failed,
/// with `errno` still as that step's call set it.
fn prepare(spec: &ExecSpec) -> Result<(), Step> {
    enter_session(spec.session)?;
    reset_signals();
    enter_root(spec)?;
    // Groups and gid while still root; uid last, since it drops the right to change them.
    // SAFETY: `spec.groups` holds `spec.groups.len()` gids; setgroups/setgid take no other
    // pointers.
    let rc = unsafe { libc::setgroups(spec.groups.len(), spec.groups.as_ptr()) };
    check(rc.into(), Step::Setgroups)?;
    // SAFETY: plain integer argument.
    check(unsafe { libc::setgid(spec.gid) }.into(), Step::Setgid)?;
    // The bounding set before setuid: dropping needs CAP_SETPCAP, which a non-root uid loses.
    if let Some(keep) = spec.caps {
        drop_bounding_set(keep, spec.limits.last_cap)?;
    }
    // SAFETY: plain integer argument.
    check(unsafe { libc::setuid(spec.uid) }.into(), Step::Setuid)?;
    // After setuid, which for a non-root uid has already emptied permitted and effective.
    if let Some(keep) = spec.caps {
        restrict_caps(keep, spec.uid)?;
    }
    // Last, so nothing after it can open a descriptor the app would inherit.
    mark_fds_cloexec(spec.limits.fd_limit)
}

fn enter_session(session: Session) -> Result<(), Step> {
    // Session first, while SIGTTOU is still ignored: tcsetpgrp from a background group would
    // otherwise stop us.
    match session {
        // SAFETY: setsid takes no arguments.
        Session::New => check(unsafe { libc::setsid() }.into(), Step::Setsid),
        Session::Foreground => {
            // SAFETY: plain integer arguments.
            check(unsafe { libc::setpgid(0, 0) }.into(), Step::Setpgid)?;
            // Best effort: without a controlling terminal there is nothing to take, and the
            // app still runs, just without terminal job control.
            // SAFETY: plain integer arguments.
            unsafe {
                if libc::isatty(0) == 1 {
                    libc::tcsetpgrp(0, libc::getpid());
                }
            }
            Ok(())
        }
    }
}

/// Default dispositions and an empty mask, as an app expects to start.
fn reset_signals() {
    // Dispositions before the mask, so nothing pending runs our no-op handler; execve would
    // reset handlers but not SIG_IGN (SIGPIPE, SIGTTOU, SIGTTIN are ignored here).
    for signal in 1..=64 {
        if signal != libc::SIGKILL && signal != libc::SIGSTOP {
            // SAFETY: a zeroed sigaction with SIG_DFL is valid; sigaction only reads it.
            // Fails only for numbers the C library reserves; nothing to reset there.
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(signal, &action, ptr::null_mut());
            }
        }
    }
    // SAFETY: `empty` is a live local that sigemptyset initialises.
    unsafe {
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::pthread_sigmask(libc::SIG_SETMASK, &empty, ptr::null_mut());
    }
}

/// A private mount namespace, then chroot and chdir into the app's root.
fn enter_root(spec: &ExecSpec) -> Result<(), Step> {
    // Each app gets its own mount namespace; slave so mounts stage1 makes later still
    // propagate in, and nothing the app mounts leaks out.
    // SAFETY: plain integer argument.
    check(
        unsafe { libc::unshare(libc::CLONE_NEWNS) }.into(),
        Step::Unshare,
    )?;
    let flags = libc::MS_REC | libc::MS_SLAVE;
    // SAFETY: "/" is a NUL-terminated literal; the other pointers may be NULL for a
    // propagation change.
    let rc = unsafe { libc::mount(ptr::null(), c"/".as_ptr(), ptr::null(), flags, ptr::null()) };
    check(rc.into(), Step::MakeSlave)?;
    // SAFETY: `spec.root` and `spec.cwd` are C strings built before fork.
    check(
        unsafe { libc::chroot(spec.root.as_ptr()) }.into(),
        Step::Chroot,
    )?;
    // Absolute, so it resolves inside the new root and leaves no way out of it.
    // SAFETY: as above.
    check(
        unsafe { libc::chdir(spec.cwd.as_ptr()) }.into(),
        Step::Chdir,
    )
}

/// Drops every capability from 0 to `last_cap` that `keep` lacks from the bounding set, so
/// neither the app nor anything it executes (set-uid root binaries, file capabilities) can
/// regain it. EINVAL means the kernel lacks that capability: nothing to drop.
fn drop_bounding_set(keep: u64, last_cap: u32) -> Result<(), Step> {
    for cap in 0..=last_cap.min(CapSet::MAX) {
        if keep & (1 << cap) != 0 {
            continue;
        }
        // SAFETY: PR_CAPBSET_DROP takes a capability number and no pointers; the unused
        // arguments are passed as zero longs, as the kernel reads them.
        let rc = unsafe {
            libc::prctl(
                libc::PR_CAPBSET_DROP,
                libc::c_ulong::from(cap),
                0 as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
            )
        };
        if rc == -1 && errno() != libc::EINVAL {
            return Err(Step::DropBounding);
        }
    }
    Ok(())
}

/// After setuid: permitted and effective become `keep` (as far as we hold it). A root app's
/// inheritable set becomes the same; another uid keeps only the part of its inheritable set
/// within `keep` (empty unless stage2-init was started with inheritable capabilities), since
/// inheritable capabilities are not limited by the bounding set at execve. Ambient
/// capabilities are cleared (the capset already removed any outside `keep`).
fn restrict_caps(keep: u64, uid: libc::uid_t) -> Result<(), Step> {
    let mut header = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: version 3 makes capget write two data structs, the size of `data`; both are
    // live locals.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_capget,
            ptr::addr_of_mut!(header),
            data.as_mut_ptr(),
        )
    };
    check(rc, Step::Capget)?;
    let join = |low: u32, high: u32| u64::from(high) << 32 | u64::from(low);
    let permitted = join(data[0].permitted, data[1].permitted) & keep;
    let inheritable = if uid == 0 {
        permitted
    } else {
        join(data[0].inheritable, data[1].inheritable) & keep
    };
    for (word, shift) in data.iter_mut().zip([0, 32]) {
        // Truncation picks the 32-bit half.
        let half = |set: u64| (set >> shift) as u32;
        *word = CapData {
            effective: half(permitted),
            permitted: half(permitted),
            inheritable: half(inheritable),
        };
    }
    // SAFETY: as for capget; capset only reads.
    let rc = unsafe { libc::syscall(libc::SYS_capset, ptr::addr_of!(header), data.as_ptr()) };
    check(rc, Step::Capset)?;
    // SAFETY: PR_CAP_AMBIENT_CLEAR_ALL takes no pointers and needs the other arguments zero.
    let rc = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    // EINVAL: a kernel before 4.3, without ambient capabilities.
    if rc == -1 && errno() != libc::EINVAL {
        return Err(Step::ClearAmbient);
    }
    Ok(())
}

/// Marks every descriptor from 3 up close-on-exec, so the app inherits only stdin, stdout
/// and stderr, whatever stage2-init itself was started with. The spawn pipe stays usable
/// until execve succeeds.
fn mark_fds_cloexec(fd_limit: libc::c_int) -> Result<(), Step> {
    // SAFETY: close_range takes plain integers and only changes flags of our descriptors.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3 as libc::c_uint,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    match rc {
        -1 if matches!(errno(), libc::ENOSYS | libc::EINVAL) => {
            // Before Linux 5.11 (CLOSE_RANGE_CLOEXEC) or 5.9 (close_range).
            mark_fds_cloexec_one_by_one(fd_limit)
        }
        rc => check(rc, Step::CloexecFds),
    }
}

fn mark_fds_cloexec_one_by_one(fd_limit: libc::c_int) -> Result<(), Step> {
    for fd in 3..fd_limit {
        // SAFETY: fcntl on a number that is not an open descriptor only fails with EBADF.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        if flags == -1 || flags & libc::FD_CLOEXEC != 0 {
            continue;
        }
        // SAFETY: as above; `fd` is open.
        let rc = unsafe { libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) };
        check(rc.into(), Step::CloexecFds)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
