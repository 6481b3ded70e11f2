//! The only place in stage1 that talks to the kernel directly.
//!
//! Pod creation is planned as a list of [`Op`]s, all C strings prepared before `fork`, so that
//! the child (PID 1 of the new PID namespace) only makes raw, async-signal-safe system calls.
//!
//! ```text
//!  stage1 (parent)                          child = pod PID 1
//!  unshare(NEWPID); fork ───────────────────▶ run ops in order:
//!      │                                       setsid, unshare(NEWNS|NEWUTS|NEWIPC|NEWNET),
//!      │   report socketpair (SEQPACKET,       mounts, [console pty], nodev, hostname, lo up,
//!      │   CLOEXEC)                            pivot_root, execve(stage2-init)
//!      ◀── "c" + SCM_RIGHTS [pty master] ──────  (console op, when a pty is wanted)
//!      ◀── [op index, errno] on failure ───────  _exit(254)
//!      ◀── EOF when execve succeeded
//!  write `pid`, proxy the console, forward signals, wait
//! ```
use std::ffi::{CStr, CString};
use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};

use anyhow::{bail, Context, Result};

use super::console::open_console;
use super::report::{self, Report};
use super::resolve::{at_target, at_targets, make_target};
use super::{
    errno, PreparedExec, CLONE_NEWPID, MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY, MS_REC,
    MS_REMOUNT, MS_SLAVE, MS_STRICTATIME,
};

/// Where a mount op acts.
pub enum Target {
    /// A path of stage1's own tree (made by stage0 and stage1, trusted).
    Path(CString),
    /// A path inside an app's root, resolved when the op runs with openat2
    /// `RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS`: symlinks in the image are followed as if
    /// chrooted and `/proc/self/...` tricks are refused, so a mount never lands outside.
    InRoot { root: CString, path: CString },
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Path(p) => f.write_str(&lossy(p)),
            Target::InRoot { root, path } => write!(f, "{} in {}", lossy(path), lossy(root)),
        }
    }
}

/// Mount attributes of mount_setattr(2).
pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub const MOUNT_ATTR_NODEV: u64 = 0x4;

/// The pod's console: a pty of the pod's own devpts instance that replaces some of stage1's
/// standard descriptors, so that no process in the pod ever holds the caller's terminal.
pub struct ConsoleOp {
    /// The pod's `ptmx` (under its new devpts instance).
    pub ptmx: CString,
    /// The pod's `/dev/console`, which the pty's slave is bound onto.
    pub console: CString,
    /// Which of descriptors 0, 1 and 2 become the slave.
    pub stdio: [bool; 3],
    /// Make the slave the controlling terminal of PID 1's session (interactive pods).
    pub controlling_tty: bool,
    pub rows: u16,
    pub cols: u16,
}

/// A mount target to create inside an app's root while the pod is set up: a target inside
/// another of the app's mounts exists only once that one is mounted (a volume at `/data/sub`
/// is made in the volume at `/data`). Each component is resolved in the root as
/// [`Target::InRoot`] does, and a missing one is made in the directory its parent resolved to:
/// directories with mode 0755, the last component an empty file when `file`.
pub struct MakeTarget {
    root: CString,
    path: CString,
    /// For each component: the path up to it (`/a`, `/a/b`, ...) and its name.
    steps: Vec<(CString, CString)>,
    file: bool,
}

impl MakeTarget {
    /// `path` is absolute and clean (no `.` or `..`), as mount targets are.
    pub fn new(root: &std::path::Path, path: &str, file: bool) -> Result<MakeTarget> {
        let mut steps = Vec::new();
        let mut prefix = String::new();
        for name in path.split('/').filter(|c| !c.is_empty()) {
            if name == "." || name == ".." {
                bail!("bug: mount target {path:?} is not clean");
            }
            prefix.push('/');
            prefix.push_str(name);
            steps.push((super::cstring(&prefix)?, super::cstring(name)?));
        }
        Ok(MakeTarget {
            root: super::cpath(root)?,
            path: super::cstring(path)?,
            steps,
            file,
        })
    }
}

/// One step of pod creation, executed in the child.
pub enum Op {
    /// SIGKILL this process when stage1 (its parent, holding the pod lock) dies, so a pod never
    /// outlives the lock that says it runs.
    DieWithParent,
    /// A new session without a controlling terminal: the caller's terminal stays the caller's.
    Setsid,
    Unshare(libc::c_int),
    /// Joins the network namespace open on this descriptor (the pod's, made by stage1 for
    /// CNI; the descriptor stays open in stage1 until the pod runs).
    JoinNetns(RawFd),
    /// Mounts a file system (`source` is its device or name, not a path that is resolved).
    Mount {
        source: Option<CString>,
        target: Target,
        fstype: Option<CString>,
        flags: libc::c_ulong,
        data: Option<CString>,
        /// A missing target is skipped instead of failing (optional hardening mounts).
        optional: bool,
    },
    /// Bind-mounts `source` on `target`, both resolved when the op runs.
    Bind {
        source: Target,
        target: Target,
        recursive: bool,
        /// A missing source or target is skipped instead of failing.
        optional: bool,
    },
    /// Sets and clears mount attributes (`MOUNT_ATTR_*`) with mount_setattr(2); `recursive`
    /// covers the submounts too.
    SetAttr {
        target: Target,
        set: u64,
        clear: u64,
        recursive: bool,
        /// A missing target is skipped instead of failing.
        optional: bool,
    },
    /// Creates the pod's console pty and sends its master to stage1.
    Console(ConsoleOp),
    /// Creates a missing mount target inside an app's root when the op runs.
    MakeTarget(MakeTarget),
    Mkdir(CString, libc::mode_t),
    /// Gives a file to this uid and gid (the root of the pod's user namespace).
    Chown(CString, u32),
    /// Creates a new file with `data` (never following a symlink, never replacing a file).
    WriteFile {
        path: CString,
        data: Vec<u8>,
        mode: libc::mode_t,
        owner: Option<u32>,
    },
    /// Creates an empty file (a bind-mount target) unless it exists.
    Touch(CString),
    Symlink {
        target: CString,
        link: CString,
    },
    SetHostname(CString),
    LoopbackUp,
    /// Replaces fd 0 with this descriptor.
    Stdin(OwnedFd),
    /// Moves the pod's PID 1 into its cgroups: writes `0` to each `cgroup.procs`.
    JoinCgroups(Vec<OwnedFd>),
    /// Moves PID 1 into its cgroup2 cgroup, unless it was created there (clone3
    /// CLONE_INTO_CGROUP, see [`spawn_pod`]).
    JoinCgroupV2(OwnedFd),
    /// Mounts a detached, id-mapped copy of the stage1 root's mount tree (made by stage1
    /// with [`idmapped_tree`]) on `target` (`--private-users`).
    AttachIdmappedRoot {
        tree: OwnedFd,
        target: CString,
    },
    /// Enters a new user namespace, has stage1 map it (report `u`, answer `k`) and becomes
    /// its uid and gid 0; last before stage2-init runs (`--private-users`). Everything before
    /// ran as the host's root, in namespaces the host's user namespace owns.
    EnterUserns,
    /// Drops every capability from 0 to `last` that is not in the mask from the bounding set,
    /// so that stage2-init starts with no more than it and its apps need.
    LimitBounding {
        keep: u64,
        last: u32,
    },
    /// `chdir(new_root)`, `pivot_root(".", ".")`, detach the old root, `chdir("/")`.
    PivotRoot(CString),
    UnblockSignals,
    Exec(PreparedExec),
}

fn flag_names(flags: libc::c_ulong) -> String {
    let names = [
        (MS_BIND, "MS_BIND"),
        (MS_REC, "MS_REC"),
        (MS_RDONLY, "MS_RDONLY"),
        (MS_REMOUNT, "MS_REMOUNT"),
        (MS_NOSUID, "MS_NOSUID"),
        (MS_NODEV, "MS_NODEV"),
        (MS_NOEXEC, "MS_NOEXEC"),
        (MS_SLAVE, "MS_SLAVE"),
        (MS_STRICTATIME, "MS_STRICTATIME"),
    ];
    let set: Vec<_> = names
        .iter()
        .filter(|(f, _)| flags & f != 0)
        .map(|(_, n)| *n)
        .collect();
    if set.is_empty() {
        "0".into()
    } else {
        set.join("|")
    }
}

fn lossy(c: &CStr) -> String {
    c.to_string_lossy().into_owned()
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::DieWithParent => write!(f, "set the parent-death signal"),
            Op::Setsid => write!(f, "start a new session"),
            Op::Unshare(flags) => write!(f, "unshare namespaces (flags {flags:#x})"),
            Op::JoinNetns(_) => write!(f, "join the pod's network namespace"),
            Op::Mount {
                source,
                target,
                fstype,
                flags,
                data,
                ..
            } => write!(
                f,
                "mount {} on {} (type {}, flags {}, data {:?})",
                source
                    .as_deref()
                    .map(lossy)
                    .unwrap_or_else(|| "none".into()),
                target,
                fstype
                    .as_deref()
                    .map(lossy)
                    .unwrap_or_else(|| "none".into()),
                flag_names(*flags),
                data.as_deref().map(lossy).unwrap_or_default()
            ),
            Op::Bind {
                source,
                target,
                recursive,
                ..
            } => write!(
                f,
                "bind-mount {source} on {target} ({})",
                if *recursive {
                    "MS_BIND|MS_REC"
                } else {
                    "MS_BIND"
                }
            ),
            Op::SetAttr {
                target,
                set,
                clear,
                recursive,
                ..
            } => write!(
                f,
                "set attributes {set:#x} and clear {clear:#x} on {target} (mount_setattr{})",
                if *recursive { ", AT_RECURSIVE" } else { "" }
            ),
            Op::Console(c) => write!(
                f,
                "create the pod's console from {} and bind it on {}",
                lossy(&c.ptmx),
                lossy(&c.console)
            ),
            Op::MakeTarget(t) => write!(
                f,
                "create mount target {} in {} (a {})",
                lossy(&t.path),
                lossy(&t.root),
                if t.file { "file" } else { "directory" }
            ),
            Op::Mkdir(p, _) => write!(f, "create directory {}", lossy(p)),
            Op::Chown(p, id) => write!(f, "give {} to {id}:{id}", lossy(p)),
            Op::WriteFile { path, .. } => write!(f, "write {}", lossy(path)),
            Op::Touch(p) => write!(f, "create file {}", lossy(p)),
            Op::Symlink { target, link } => {
                write!(f, "create symlink {} -> {}", lossy(link), lossy(target))
            }
            Op::SetHostname(h) => write!(f, "set hostname {}", lossy(h)),
            Op::LoopbackUp => write!(f, "bring up the loopback interface"),
            Op::Stdin(_) => write!(f, "redirect stdin"),
            Op::JoinCgroups(_) | Op::JoinCgroupV2(_) => write!(f, "join the pod's cgroups"),
            Op::AttachIdmappedRoot { target, .. } => {
                write!(f, "mount the id-mapped stage1 root on {}", lossy(target))
            }
            Op::EnterUserns => write!(f, "enter the pod's user namespace as its root"),
            Op::LimitBounding { keep, .. } => {
                write!(f, "limit the capability bounding set to {keep:#x}")
            }
            Op::PivotRoot(p) => write!(f, "pivot into {}", lossy(p)),
            Op::UnblockSignals => write!(f, "unblock signals"),
            Op::Exec(e) => write!(f, "execute {}", lossy(&e.path)),
        }
    }
}

/// The child's side of [`Op::WriteFile`]: 0, or -1 with errno set. Async-signal-safe.
///
/// # Safety
/// Raw system calls on data owned by the caller.
unsafe fn write_new_file(
    path: &CStr,
    data: &[u8],
    mode: libc::mode_t,
    owner: Option<u32>,
) -> libc::c_int {
    let fd = libc::open(
        path.as_ptr(),
        libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        mode,
    );
    if fd < 0 {
        return -1;
    }
    let mut rest = data;
    let mut rc = 0;
    while !rest.is_empty() {
        let n = libc::write(fd, rest.as_ptr().cast(), rest.len());
        if n < 0 && errno() == libc::EINTR {
            continue;
        }
        if n <= 0 {
            rc = -1;
            break;
        }
        rest = &rest[n as usize..];
    }
    if rc == 0 {
        if let Some(id) = owner {
            rc = libc::fchown(fd, id, id);
        }
    }
    // The umask may have narrowed the mode; what was asked is what the file gets.
    if rc == 0 {
        rc = libc::fchmod(fd, mode);
    }
    let saved = errno();
    libc::close(fd);
    *libc::__errno_location() = saved;
    rc
}

const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
const OPEN_TREE_CLONE: libc::c_uint = 1;
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

/// The child's side of [`Op::EnterUserns`]. Async-signal-safe.
///
/// # Safety
/// Raw system calls on stack data only.
unsafe fn enter_userns(report: RawFd) -> libc::c_int {
    if libc::unshare(libc::CLONE_NEWUSER) != 0 {
        return -1;
    }
    if super::channel::send_with_fds(report, b"u", &[]) < 0 {
        return -1;
    }
    let mut ack = [0u8; 1];
    if libc::recv(report, ack.as_mut_ptr().cast(), 1, 0) != 1 || ack[0] != b'k' {
        *libc::__errno_location() = libc::EPROTO;
        return -1;
    }
    // From the host's uid 0 (unmapped here) to the namespace's root: capabilities stay.
    if libc::setresgid(0, 0, 0) != 0
        || libc::setgroups(0, std::ptr::null()) != 0
        || libc::setresuid(0, 0, 0) != 0
    {
        return -1;
    }
    0
}

/// Writes the `0 SHIFT COUNT` maps of the user namespace of `pid`.
pub fn map_ids(pid: libc::pid_t, shift: u32, count: u32) -> Result<()> {
    let map = format!("0 {shift} {count}\n");
    for file in ["uid_map", "gid_map"] {
        let path = format!("/proc/{pid}/{file}");
        std::fs::write(&path, &map).with_context(|| format!("cannot write {path}"))?;
    }
    Ok(())
}

/// A user namespace mapping 0 to `shift` for `count` ids, held by a descriptor: a helper
/// process creates it, stage1 maps it, opens it and lets the helper go.
fn mapping_userns(shift: u32, count: u32) -> Result<OwnedFd> {
    let flags = (libc::CLONE_NEWUSER | libc::SIGCHLD) as libc::c_ulong;
    // SAFETY: without a new stack the raw clone returns twice, like fork; the child only
    // waits for its SIGKILL in pause(), an async-signal-safe call.
    let pid = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
    if pid < 0 {
        return Err(io::Error::last_os_error()).context("cannot create a user namespace");
    }
    if pid == 0 {
        loop {
            // SAFETY: pause has no preconditions.
            unsafe { libc::pause() };
        }
    }
    let pid = pid as libc::pid_t;
    let result = map_ids(pid, shift, count).and_then(|()| {
        let path = format!("/proc/{pid}/ns/user");
        let f = std::fs::File::open(&path).with_context(|| format!("cannot open {path}"))?;
        Ok(OwnedFd::from(f))
    });
    // SAFETY: our own helper child; reaped right away.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        libc::waitpid(pid, std::ptr::null_mut(), 0);
    }
    result
}

/// A detached copy of the mount tree at `root` (submounts included), id-mapped so that
/// ids 0 to `count - 1` on disk are `shift` onwards for the kernel: what the pod's root sees
/// as its own files (`--private-users`).
pub fn idmapped_tree(root: &CStr, shift: u32, count: u32) -> Result<OwnedFd> {
    let ns = mapping_userns(shift, count)?;
    // SAFETY: a NUL-terminated path and plain flags; a new descriptor is returned.
    let tree = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            root.as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint | libc::AT_RECURSIVE as libc::c_uint,
        )
    };
    if tree < 0 {
        return Err(io::Error::last_os_error())
            .with_context(|| format!("cannot clone the mount tree of {}", lossy(root)));
    }
    // SAFETY: open_tree returned a new descriptor that nothing else owns.
    let tree = unsafe { OwnedFd::from_raw_fd(tree as RawFd) };
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: ns.as_raw_fd() as u64,
    };
    // SAFETY: `attr` is a live struct of the size passed; the path is an empty C string.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            (libc::AT_EMPTY_PATH | libc::AT_RECURSIVE) as libc::c_uint,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error()).context(
            "cannot id-map the pod's root file systems for --private-users (this needs Linux 5.12 or later and file systems that support id-mapped mounts)",
        );
    }
    Ok(tree)
}

/// `struct mount_attr` of mount_setattr(2).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

fn opt_ptr(c: &Option<CString>) -> *const libc::c_char {
    c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr())
}

/// Runs one op. Only raw system calls on data prepared before `fork`; `report` is the socket
/// to stage1, for the console's master.
/// `placed`: the child was created in its cgroup2 cgroup already.
fn run_op(op: &Op, report: RawFd, placed: bool) -> Result<(), i32> {
    // SAFETY (whole function): every pointer comes from a CString or Vec owned by `op`, alive
    // for the duration of each call; no allocation happens here.
    let rc = unsafe {
        match op {
            Op::DieWithParent => libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL),
            Op::Setsid => libc::setsid(),
            Op::Unshare(flags) => libc::unshare(*flags),
            Op::JoinNetns(fd) => libc::setns(*fd, libc::CLONE_NEWNET),
            Op::Mount {
                source,
                target,
                fstype,
                flags,
                data,
                optional,
            } => at_target(target, *optional, |path| {
                libc::mount(
                    opt_ptr(source),
                    path,
                    opt_ptr(fstype),
                    *flags,
                    opt_ptr(data) as *const libc::c_void,
                )
            }),
            Op::Bind {
                source,
                target,
                recursive,
                optional,
            } => at_targets(source, target, *optional, |src, dst| {
                let flags = MS_BIND | if *recursive { MS_REC } else { 0 };
                libc::mount(src, dst, std::ptr::null(), flags, std::ptr::null())
            }),
            Op::SetAttr {
                target,
                set,
                clear,
                recursive,
                optional,
            } => at_target(target, *optional, |path| {
                let attr = MountAttr {
                    attr_set: *set,
                    attr_clr: *clear,
                    propagation: 0,
                    userns_fd: 0,
                };
                let flags = if *recursive {
                    libc::AT_RECURSIVE as libc::c_uint
                } else {
                    0
                };
                libc::syscall(
                    libc::SYS_mount_setattr,
                    libc::AT_FDCWD,
                    path,
                    flags,
                    &attr as *const MountAttr,
                    std::mem::size_of::<MountAttr>(),
                ) as libc::c_int
            }),
            Op::Mkdir(p, mode) => {
                let rc = libc::mkdir(p.as_ptr(), *mode);
                if rc != 0 && errno() == libc::EEXIST {
                    0
                } else {
                    rc
                }
            }
            Op::Chown(p, id) => libc::lchown(p.as_ptr(), *id, *id),
            Op::WriteFile {
                path,
                data,
                mode,
                owner,
            } => write_new_file(path, data, *mode, *owner),
            Op::Touch(p) => {
                let fd = libc::open(
                    p.as_ptr(),
                    libc::O_WRONLY | libc::O_CREAT | libc::O_CLOEXEC | libc::O_NOFOLLOW,
                    0o644,
                );
                if fd >= 0 {
                    libc::close(fd);
                    0
                } else {
                    fd
                }
            }
            Op::Symlink { target, link } => {
                let rc = libc::symlink(target.as_ptr(), link.as_ptr());
                if rc != 0 && errno() == libc::EEXIST {
                    0
                } else {
                    rc
                }
            }
            Op::SetHostname(h) => libc::sethostname(h.as_ptr(), h.as_bytes().len()),
            Op::LoopbackUp => loopback_up(),
            Op::LimitBounding { keep, last } => {
                let mut rc = 0;
                for cap in 0..=(*last).min(63) {
                    if keep & (1u64 << cap) == 0
                        && libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap), 0, 0, 0)
                            != 0
                        && *libc::__errno_location() != libc::EINVAL
                    {
                        rc = -1;
                        break;
                    }
                }
                rc
            }
            Op::AttachIdmappedRoot { tree, target } => libc::syscall(
                libc::SYS_move_mount,
                tree.as_raw_fd(),
                c"".as_ptr(),
                libc::AT_FDCWD,
                target.as_ptr(),
                MOVE_MOUNT_F_EMPTY_PATH,
            ) as libc::c_int,
            Op::EnterUserns => enter_userns(report),
            Op::JoinCgroupV2(_) if placed => 0,
            Op::JoinCgroupV2(fd) => {
                if libc::write(fd.as_raw_fd(), c"0".as_ptr().cast(), 1) != 1 {
                    -1
                } else {
                    0
                }
            }
            Op::JoinCgroups(fds) => {
                let mut rc = 0;
                for fd in fds {
                    if libc::write(fd.as_raw_fd(), c"0".as_ptr().cast(), 1) != 1 {
                        rc = -1;
                        break;
                    }
                }
                rc
            }
            Op::Stdin(fd) => {
                if libc::dup2(fd.as_raw_fd(), 0) < 0 {
                    -1
                } else {
                    0
                }
            }
            Op::PivotRoot(root) => {
                let dot = c".".as_ptr();
                if libc::chdir(root.as_ptr()) != 0
                    || libc::syscall(libc::SYS_pivot_root, dot, dot) != 0
                    || libc::umount2(dot, libc::MNT_DETACH) != 0
                    || libc::chdir(c"/".as_ptr()) != 0
                {
                    -1
                } else {
                    0
                }
            }
            Op::Console(console) => open_console(console, report),
            Op::MakeTarget(t) => make_target(&t.root, &t.steps, t.file),
            Op::UnblockSignals => unblock_all_signals(),
            Op::Exec(e) => libc::execve(e.path.as_ptr(), e.argv.as_ptr(), e.envp.as_ptr()),
        }
    };
    if rc < 0 {
        Err(errno())
    } else {
        Ok(())
    }
}

/// Sets IFF_UP on `lo` (async-signal-safe: socket, ioctl, close).
///
/// # Safety
/// Only raw system calls on stack data.
unsafe fn loopback_up() -> libc::c_int {
    let sock = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
    if sock < 0 {
        return -1;
    }
    let mut req: libc::ifreq = std::mem::zeroed();
    for (i, b) in b"lo\0".iter().enumerate() {
        req.ifr_name[i] = *b as libc::c_char;
    }
    let mut rc = libc::ioctl(sock, libc::SIOCGIFFLAGS, &mut req);
    if rc == 0 {
        req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        rc = libc::ioctl(sock, libc::SIOCSIFFLAGS, &req);
    }
    libc::close(sock);
    rc
}

/// The pod's PID 1 as seen from stage1, and the pipe that reports how its setup went.
pub struct PodChild {
    pub pid: i32,
    report: OwnedFd,
}

/// Creates the PID namespace and forks the pod's PID 1, which runs `ops`.
/// `struct clone_args` of clone3(2), up to `cgroup` (CLONE_ARGS_SIZE_VER2).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// The pod's PID 1 in a new PID namespace, created in the cgroup2 directory `cgroup` when
/// given (a move into a cgroup afterwards costs an RCU grace period, about 10 ms); the
/// returned flag says whether it was. Falls back to `unshare` and `fork`.
///
/// # Safety
/// As `fork`: stage1 is single-threaded and the child only makes async-signal-safe calls.
unsafe fn fork_pod(cgroup: Option<RawFd>) -> Result<(libc::pid_t, bool)> {
    if let Some(fd) = cgroup {
        let args = CloneArgs {
            flags: CLONE_NEWPID as u64 | CLONE_INTO_CGROUP,
            exit_signal: libc::SIGCHLD as u64,
            cgroup: fd as u64,
            ..CloneArgs::default()
        };
        // Without a stack, clone3 returns in both processes on the caller's stack, as fork.
        let pid = libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        );
        if pid >= 0 {
            return Ok((pid as libc::pid_t, true));
        }
        let err = io::Error::last_os_error();
        if !matches!(
            err.raw_os_error(),
            Some(libc::ENOSYS | libc::E2BIG | libc::EINVAL | libc::EOPNOTSUPP)
        ) {
            return Err(err).context("cannot create the pod's PID 1 (clone3)");
        }
    }
    if libc::unshare(CLONE_NEWPID) != 0 {
        return Err(io::Error::last_os_error())
            .context("cannot create the pod's PID namespace (unshare CLONE_NEWPID)");
    }
    match libc::fork() {
        -1 => Err(io::Error::last_os_error()).context("cannot fork the pod's PID 1"),
        pid => Ok((pid, false)),
    }
}

/// `cgroup`: PID 1's cgroup2 directory, to create it there.
pub fn spawn_pod(ops: &[Op], cgroup: Option<RawFd>) -> Result<PodChild> {
    let mut fds = [0 as RawFd; 2];
    let kind = libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC;
    // SAFETY: `fds` is a valid array of two ints for socketpair to fill.
    if unsafe { libc::socketpair(libc::AF_UNIX, kind, 0, fds.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error()).context("cannot create the setup report socket");
    }
    // SAFETY: pipe2 just returned these two descriptors, owned by nobody else.
    let (read_end, write_end) =
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: stage1 is single-threaded; the child only runs `run_op` on prepared data and
    // async-signal-safe calls, then execs or `_exit`s.
    let (pid, placed) = unsafe { fork_pod(cgroup)? };
    if pid == 0 {
        let wfd = write_end.as_raw_fd();
        for (index, op) in ops.iter().enumerate() {
            if let Err(err) = run_op(op, wfd, placed) {
                // SAFETY: a raw send on our socket end, then leaving without running any
                // destructors.
                unsafe {
                    report::send_failure(wfd, index, err);
                    libc::_exit(254);
                }
            }
        }
        // The last op execs; reaching here means the plan had no exec.
        // SAFETY: leaving the child without unwinding.
        unsafe { libc::_exit(254) };
    }
    drop(write_end);
    Ok(PodChild {
        pid,
        report: read_end,
    })
}

impl PodChild {
    /// Waits until the child exec'd (Ok) or reports which op failed. Returns the console's
    /// pty master when the plan made one.
    /// `ids`: the `(shift, count)` of the pod's user namespace, mapped when the child asks.
    pub fn wait_started(&self, ops: &[Op], ids: Option<(u32, u32)>) -> Result<Option<OwnedFd>> {
        let mut console = None;
        loop {
            match report::receive(self.report.as_fd())? {
                Report::Started => return Ok(console),
                Report::Console(master) => console = Some(master),
                Report::Userns => {
                    let Some((shift, count)) = ids else {
                        bail!(
                            "the pod's PID 1 asked for user namespace maps it was not planned with"
                        );
                    };
                    map_ids(self.pid, shift, count)?;
                    super::channel::send(self.report.as_fd(), b"k", &[])?;
                }
                Report::Failed { index, errno } => {
                    let what = ops
                        .get(index)
                        .map(|o| o.to_string())
                        .unwrap_or_else(|| "set up the pod".into());
                    bail!("cannot {what}: {}", io::Error::from_raw_os_error(errno))
                }
            }
        }
    }
}

/// Empties the signal mask (before exec: children must not inherit blocked signals).
///
/// # Safety
/// Async-signal-safe; no preconditions beyond a valid process.
pub(super) unsafe fn unblock_all_signals() -> libc::c_int {
    let mut set: libc::sigset_t = std::mem::zeroed();
    libc::sigemptyset(&mut set);
    libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut())
}
