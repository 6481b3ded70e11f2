//! Starting an app process: one function, [`spawn`], used for every process that runs inside
//! an app (its main process, its event handlers and `rkt enter` commands), so each gets the
//! same confinement. Failures before `execve` are reported through a CLOEXEC pipe.
//!
//! ```text
//!  parent (stage2-init)                       child
//!  ExecSpec: C strings, pointer arrays,
//!  ExecLimits (cap_last_cap, fd limit)
//!  pipe2(O_CLOEXEC) ── fork ─────────────────> write "0" to each v1 `tasks` descriptor
//!                                              [oom] write /proc/self/oom_score_adj
//!                                              setsid | setpgid (+ take the terminal)
//!                                              [stdio] dup2 onto 0-2, TIOCSCTTY
//!                                              reset signal dispositions and mask
//!                                              unshare(CLONE_NEWNS), mount / MS_REC|MS_SLAVE
//!                                              bind the root onto itself, pivot_root into it,
//!                                              detach the old root (stage1's): nothing above
//!                                              the app's root is left to climb to
//!                                              setgroups, setgid
//!                                              [caps] PR_CAPBSET_DROP all but the kept ones
//!                                              setuid
//!                                              [caps] PR_CAP_AMBIENT_CLEAR_ALL
//!                                              cwd: openat2 RESOLVE_IN_ROOT|NO_MAGICLINKS as
//!                                              the app's user, fchdir
//!                                              close_range(3, ~0, CLOSE_RANGE_CLOEXEC)
//!                                              [nnp] PR_SET_NO_NEW_PRIVS
//!                                              [seccomp, no nnp] load the filter
//!                                              [caps] capget, capset
//!                                              [seccomp, nnp] load the filter
//!  read(pipe) blocks                           execve (each PATH candidate) ─ ok: pipe closes
//!    0 bytes (EOF)     -> started                 └─ failed: write [step u32, errno i32], _exit
//!    8 bytes           -> waitpid, SpawnError
//! ```
//!
//! stage2-init never starts a thread, so after `fork` the child is an exact copy with one thread;
//! it still runs only async-signal-safe calls (raw syscalls) on memory prepared before `fork`.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr;

use super::caps::{clear_ambient, drop_bounding_set, restrict_caps};
use super::confine::{
    fork_into, join_cgroups, load_seccomp, set_no_new_privs, set_oom_score_adj, Program,
};
use super::root::{change_directory, enter_root};
use super::{cstring, Error};
use crate::plan::CapSet;
use crate::supervisor::Pid;

/// The highest capability number the running kernel knows.
const LAST_CAP_PATH: &str = "/proc/sys/kernel/cap_last_cap";

/// The kernel's default ceiling for descriptor numbers (`fs.nr_open`), which also bounds the
/// one-by-one close-on-exec fallback when RLIMIT_NOFILE is unlimited.
const FD_LIMIT_MAX: libc::rlim_t = 1 << 20;

/// Where a bare command name is looked up when the environment has no `PATH` (appc's default).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Whether the child leads a new session or only a new process group that becomes the
/// terminal's foreground group (interactive apps keep the controlling terminal).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Session {
    New,
    Foreground,
}

/// Descriptors that become the child's 0, 1 and 2 instead of stage2-init's own.
pub struct Stdio<'a> {
    pub fds: [BorrowedFd<'a>; 3],
    /// Make descriptor 0 (a terminal) the controlling terminal of the child's new session.
    pub controlling_tty: bool,
}

/// What the child learns from the kernel before `fork`, since it may not open files after.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExecLimits {
    /// Capabilities 0 to this one are dropped from the bounding set unless kept.
    pub(super) last_cap: u32,
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
    pub(super) root: CString,
    pub(super) cwd: CString,
    argv: Vec<CString>,
    /// The files tried in turn for `argv[0]`: itself when it holds a `/`, else each `PATH`
    /// directory joined with it (as execvp does, but inside the app's root).
    candidates: Vec<CString>,
    env: Vec<CString>,
    uid: libc::uid_t,
    gid: libc::gid_t,
    groups: Vec<libc::gid_t>,
    session: Session,
    /// The capabilities to keep, as a 64-bit mask; `None` leaves them alone.
    pub(super) caps: Option<u64>,
    cgroup_fds: Vec<libc::c_int>,
    /// The app's cgroup2 directory and its `cgroup.procs`.
    cgroup_v2: Option<(libc::c_int, libc::c_int)>,
    /// The decimal value for /proc/self/oom_score_adj.
    oom_score_adj: Option<Vec<u8>>,
    no_new_privileges: bool,
    seccomp: Vec<Program>,
    limits: ExecLimits,
}

/// What stage1 prepared to confine an app beyond its root and credentials
/// (docs/stage-contract.md, "Cgroups" and "Seccomp").
#[derive(Clone, Copy, Default)]
pub struct Confinement<'a> {
    /// Descriptors open for writing on `tasks` of each of the app's v1 cgroups.
    pub cgroup_fds: &'a [i32],
    /// The app's cgroup2 directory (cloned into) and its `cgroup.procs` (written when the
    /// kernel cannot clone into a cgroup).
    pub cgroup_v2: Option<(i32, i32)>,
    pub oom_score_adj: Option<i32>,
    pub no_new_privileges: bool,
    /// Loaded in order just before `execve`.
    pub seccomp: &'a [Program],
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
    pub confine: Confinement<'a>,
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
        let Some(arg0) = command.argv.first() else {
            let err = io::Error::new(io::ErrorKind::InvalidInput, "empty command");
            return Err(Error::new("execve", err));
        };
        let candidates = exec_candidates(arg0, command.env)
            .iter()
            .map(|c| cstring("command", c))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            root: cstring("root", command.root.as_os_str())?,
            cwd: cstring("cwd", command.cwd.as_os_str())?,
            argv,
            candidates,
            env: strings("env", command.env)?,
            uid: command.uid,
            gid: command.gid,
            groups: command.groups.to_vec(),
            session: command.session,
            caps: command.caps.map(CapSet::bits),
            cgroup_fds: command.confine.cgroup_fds.to_vec(),
            cgroup_v2: command.confine.cgroup_v2,
            oom_score_adj: command
                .confine
                .oom_score_adj
                .map(|v| v.to_string().into_bytes()),
            no_new_privileges: command.confine.no_new_privileges,
            seccomp: command.confine.seccomp.to_vec(),
            limits,
        })
    }
}

/// `arg0` itself when it names a path, else `<dir>/<arg0>` for each directory of the `PATH`
/// in `env` (or appc's default), skipping empty entries.
fn exec_candidates(arg0: &OsStr, env: &[OsString]) -> Vec<OsString> {
    if arg0.as_bytes().contains(&b'/') {
        return vec![arg0.to_owned()];
    }
    let path = env
        .iter()
        .rev()
        .find_map(|e| e.as_bytes().strip_prefix(b"PATH="))
        .unwrap_or(DEFAULT_PATH.as_bytes());
    path.split(|b| *b == b':')
        .filter(|dir| !dir.is_empty())
        .map(|dir| {
            let mut candidate = dir.to_vec();
            candidate.push(b'/');
            candidate.extend_from_slice(arg0.as_bytes());
            OsStr::from_bytes(&candidate).to_owned()
        })
        .collect()
}

/// The child's steps that can fail, in order; sent as a number through the pipe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub(super) enum Step {
    JoinCgroup = 1,
    OomScoreAdj,
    Setsid,
    Setpgid,
    Stdio,
    ControllingTty,
    Unshare,
    MakeSlave,
    BindRoot,
    PivotRoot,
    Setgroups,
    Setgid,
    DropBounding,
    Setuid,
    Capget,
    Capset,
    ClearAmbient,
    Chdir,
    CloexecFds,
    NoNewPrivs,
    Seccomp,
    Execve,
}

impl Step {
    const ALL: [Step; 22] = [
        Step::JoinCgroup,
        Step::OomScoreAdj,
        Step::Setsid,
        Step::Setpgid,
        Step::Stdio,
        Step::ControllingTty,
        Step::Unshare,
        Step::MakeSlave,
        Step::BindRoot,
        Step::PivotRoot,
        Step::Setgroups,
        Step::Setgid,
        Step::DropBounding,
        Step::Setuid,
        Step::Capget,
        Step::Capset,
        Step::ClearAmbient,
        Step::Chdir,
        Step::CloexecFds,
        Step::NoNewPrivs,
        Step::Seccomp,
        Step::Execve,
    ];

    fn from_code(code: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|step| *step as u32 == code)
    }

    /// `<step> <path or value>`, as in `stage2-init: app <name>: chdir /srv: <strerror>`.
    fn describe(self, spec: &ExecSpec) -> String {
        let lossy = |s: &CString| String::from_utf8_lossy(s.as_bytes()).into_owned();
        let caps = spec.caps.unwrap_or_default();
        match self {
            Step::JoinCgroup => "join the app's cgroups".to_owned(),
            Step::OomScoreAdj => format!(
                "write {} to /proc/self/oom_score_adj",
                String::from_utf8_lossy(spec.oom_score_adj.as_deref().unwrap_or_default())
            ),
            Step::NoNewPrivs => "prctl PR_SET_NO_NEW_PRIVS".to_owned(),
            Step::Seccomp => "load the seccomp filter".to_owned(),
            Step::Setsid => "setsid".to_owned(),
            Step::Setpgid => "setpgid".to_owned(),
            Step::Stdio => "dup2 onto descriptors 0-2".to_owned(),
            Step::ControllingTty => "ioctl TIOCSCTTY".to_owned(),
            Step::Unshare => "unshare CLONE_NEWNS".to_owned(),
            Step::MakeSlave => "mount / MS_REC|MS_SLAVE".to_owned(),
            Step::BindRoot => format!("mount {} on itself (MS_BIND|MS_REC)", lossy(&spec.root)),
            Step::PivotRoot => format!("pivot_root into {}", lossy(&spec.root)),
            Step::Setgroups => format!("setgroups {:?}", spec.groups),
            Step::Setgid => format!("setgid {}", spec.gid),
            Step::DropBounding => format!("prctl PR_CAPBSET_DROP (keeping {caps:#x})"),
            Step::Setuid => format!("setuid {}", spec.uid),
            Step::Capget => "capget".to_owned(),
            Step::Capset => format!("capset (keeping {caps:#x})"),
            Step::ClearAmbient => "prctl PR_CAP_AMBIENT_CLEAR_ALL".to_owned(),
            Step::Chdir => format!("chdir {} (inside the app's root)", lossy(&spec.cwd)),
            Step::CloexecFds => "mark descriptors 3 and up close-on-exec".to_owned(),
            Step::Execve if spec.candidates.len() > 1 => {
                format!("execve {} (looked up in PATH)", lossy(&spec.argv[0]))
            }
            Step::Execve => format!("execve {}", lossy(&spec.argv[0])),
        }
    }
}

const REPORT_LEN: usize = 8;

/// Starts `spec` and waits until it has exec'd (or failed to): on success the process runs
/// the command and its pid is returned; it leads its own process group either way. With
/// `stdio`, those descriptors become its 0, 1 and 2.
pub fn spawn(spec: &ExecSpec, stdio: Option<&Stdio<'_>>) -> Result<Pid, Error> {
    let argv = null_terminated(&spec.argv);
    let envp = null_terminated(&spec.env);
    let (reader, writer) = cloexec_pipe()?;
    // SAFETY: stage2-init is single-threaded, so the child is a consistent copy; it only runs
    // `child`, which makes async-signal-safe calls on data prepared above and never returns.
    let (pid, placed) = unsafe { fork_into(spec.cgroup_v2.map(|(dir, _)| dir)) }
        .map_err(|e| Error::new("fork", e))?;
    if pid == 0 {
        child(spec, stdio, &argv, &envp, writer.as_fd(), placed);
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
pub(super) fn errno() -> libc::c_int {
    // SAFETY: __errno_location returns this thread's errno slot, valid for the thread's life.
    unsafe { *libc::__errno_location() }
}

/// `Err(step)` for a raw call's `-1`, leaving `errno` as the call set it.
pub(super) fn check(rc: libc::c_long, step: Step) -> Result<(), Step> {
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
    stdio: Option<&Stdio<'_>>,
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
    report: BorrowedFd<'_>,
    placed: bool,
) -> ! {
    let fail = |step: Step, code: libc::c_int| -> ! {
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
    if let Err(step) = prepare(spec, stdio, placed) {
        fail(step, errno());
    }
    // The first error that is not "no such file here" wins, as in execvp.
    let mut first_error = libc::ENOENT;
    for candidate in &spec.candidates {
        // SAFETY: argv and envp are NULL-terminated arrays of C strings built before fork that
        // outlive this call; execve returns only on failure.
        unsafe { libc::execve(candidate.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
        match errno() {
            libc::ENOENT | libc::ENOTDIR => {}
            other if first_error == libc::ENOENT => first_error = other,
            _ => {}
        }
    }
    fail(Step::Execve, first_error)
}

/// Everything the child does before `execve`, in order; `Err` names the step that failed,
/// with `errno` still as that step's call set it.
/// `placed`: the child was created in the app's cgroup2 cgroup already.
fn prepare(spec: &ExecSpec, stdio: Option<&Stdio<'_>>, placed: bool) -> Result<(), Step> {
    // First, so that everything the child does is accounted to the app, and while still
    // privileged enough to lower the OOM score.
    join_cgroups(&spec.cgroup_fds)?;
    if let (Some((_, procs)), false) = (spec.cgroup_v2, placed) {
        join_cgroups(&[procs])?;
    }
    if let Some(value) = &spec.oom_score_adj {
        set_oom_score_adj(value)?;
    }
    enter_session(spec.session)?;
    if let Some(stdio) = stdio {
        replace_stdio(stdio)?;
    }
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
    if spec.caps.is_some() {
        clear_ambient()?;
    }
    // Only now, with the app's own credentials: a working directory the app could not reach
    // itself (a symlink to /proc/1/root, say) stays out of reach.
    change_directory(spec)?;
    // So nothing after it can open a descriptor the app would inherit.
    mark_fds_cloexec(spec.limits.fd_limit)?;
    if spec.no_new_privileges {
        set_no_new_privs()?;
    }
    // Without no-new-privileges the kernel takes a filter only from a process holding
    // CAP_SYS_ADMIN, so it goes in before the capability sets narrow (the filter then has to
    // let capget and capset through, aci::seccomp::ALWAYS_ALLOWED); with it, last.
    let filter_first = !spec.no_new_privileges;
    if filter_first {
        load_seccomp(&spec.seccomp)?;
    }
    // After setuid, which for a non-root uid has already emptied permitted and effective.
    if let Some(keep) = spec.caps {
        restrict_caps(keep, spec.uid)?;
    }
    if !filter_first {
        load_seccomp(&spec.seccomp)?;
    }
    Ok(())
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

/// Makes `stdio.fds` descriptors 0, 1 and 2. Each is first duplicated above 2, so that a
/// source that happens to be 0, 1 or 2 is not overwritten before it is used.
fn replace_stdio(stdio: &Stdio<'_>) -> Result<(), Step> {
    let mut high = [-1; 3];
    for (slot, fd) in high.iter_mut().zip(&stdio.fds) {
        // SAFETY: F_DUPFD_CLOEXEC on a descriptor the caller keeps open; plain integers.
        *slot = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
        check((*slot).into(), Step::Stdio)?;
    }
    for (target, fd) in (0..).zip(high) {
        // SAFETY: plain integers; dup2 clears close-on-exec on the new descriptor.
        check(unsafe { libc::dup2(fd, target) }.into(), Step::Stdio)?;
    }
    if stdio.controlling_tty {
        // SAFETY: TIOCSCTTY takes an integer argument (0: do not steal from another session).
        let rc = unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) };
        check(rc.into(), Step::ControllingTty)?;
    }
    Ok(())
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
