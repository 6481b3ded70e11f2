//! The only place in stage0 that talks to the kernel directly. Thin wrappers whose errors name
//! the operation, the paths and the flags.
use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::mount::{MntFlags, MsFlags};

/// Effective user id.
pub fn euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

fn retry<T>(mut f: impl FnMut() -> nix::Result<T>) -> nix::Result<T> {
    loop {
        match f() {
            Err(Errno::EINTR) => continue,
            other => return other,
        }
    }
}

/// Result of a non-blocking lock attempt.
#[derive(Debug, PartialEq, Eq)]
pub enum LockOutcome {
    Acquired,
    Busy,
}

/// `flock(2)` on an open file or directory.
pub fn flock(fd: BorrowedFd<'_>, exclusive: bool, wait: bool) -> io::Result<LockOutcome> {
    let mut op = if exclusive {
        libc::LOCK_EX
    } else {
        libc::LOCK_SH
    };
    if !wait {
        op |= libc::LOCK_NB;
    }
    loop {
        // SAFETY: flock only reads the descriptor number, which `fd` keeps open.
        let rc = unsafe { libc::flock(fd.as_raw_fd(), op) };
        if rc == 0 {
            return Ok(LockOutcome::Acquired);
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EWOULDBLOCK) if !wait => return Ok(LockOutcome::Busy),
            _ => return Err(err),
        }
    }
}

/// Releases a `flock(2)`.
pub fn unlock(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: as in `flock`.
    let rc = unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_UN) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Opens a directory for locking and `*at` use.
pub fn open_dir(path: &Path) -> Result<OwnedFd> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    Ok(OwnedFd::from(file))
}

/// Lets `fd` survive `execve` (the pod lock handed to stage1).
pub fn clear_cloexec(fd: BorrowedFd<'_>) -> Result<()> {
    fcntl(fd, FcntlArg::F_SETFD(FdFlag::empty()))
        .context("cannot clear close-on-exec on the pod lock")?;
    Ok(())
}

fn cstr(p: &OsStr) -> Result<CString> {
    CString::new(p.as_bytes()).with_context(|| format!("path {p:?} contains a NUL byte"))
}

/// Mounts an overlay of `lower` (read-only) with `upper`/`work` onto `target`. The layers are
/// named by `/proc/self/fd/<n>` of descriptors opened here: overlayfs shows its options in
/// every mountinfo, the pod's included, and those paths reveal nothing of the host's data
/// directory or the store.
pub fn mount_overlay(lower: &Path, upper: &Path, work: &Path, target: &Path) -> Result<()> {
    let open = |dir: &Path| -> Result<OwnedFd> {
        let fd = nix::fcntl::open(
            dir,
            nix::fcntl::OFlag::O_PATH
                | nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .with_context(|| format!("cannot open overlay layer {}", dir.display()))?;
        Ok(fd)
    };
    let (l, u, w) = (open(lower)?, open(upper)?, open(work)?);
    let fd_path = |fd: &OwnedFd| format!("/proc/self/fd/{}", fd.as_raw_fd());
    let data = format!(
        "lowerdir={},upperdir={},workdir={}",
        fd_path(&l),
        fd_path(&u),
        fd_path(&w)
    );
    let mount = |data: &str| {
        retry(|| {
            nix::mount::mount(
                Some("overlay"),
                target,
                Some("overlay"),
                MsFlags::empty(),
                Some(data),
            )
        })
    };
    // `volatile` (Linux 5.10): the overlay never syncs. Without it, dropping the pod's mount
    // namespace when the pod exits syncs the whole upper file system, every other process'
    // dirty data included (docs/stage-contract.md, "Mount namespace"). Older kernels refuse
    // the option.
    match mount(&format!("{data},volatile")) {
        Err(nix::errno::Errno::EINVAL) => mount(&data),
        other => other,
    }
    .with_context(|| {
        format!(
            "cannot mount overlay (lowerdir={},upperdir={},workdir={}) on {}",
            lower.display(),
            upper.display(),
            work.display(),
            target.display()
        )
    })
}

/// Opens the directories of an overlay's layers as `O_PATH` descriptors, named in the mount
/// options by `/proc/self/fd/<n>`.
fn open_layers(dirs: &[&Path]) -> Result<Vec<OwnedFd>> {
    dirs.iter()
        .map(|dir| {
            nix::fcntl::open(
                *dir,
                nix::fcntl::OFlag::O_PATH
                    | nix::fcntl::OFlag::O_DIRECTORY
                    | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .with_context(|| format!("cannot open overlay layer {}", dir.display()))
        })
        .collect()
}

/// Mounts a read-only overlay of `layers` (the first on top) onto `target`: no upper or work
/// directory, so nothing is written, and the layers may belong to another overlay.
pub fn mount_overlay_readonly(layers: &[&Path], target: &Path) -> Result<()> {
    let fds = open_layers(layers)?;
    let lower: Vec<String> = fds
        .iter()
        .map(|fd| format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .collect();
    let data = format!("lowerdir={}", lower.join(":"));
    retry(|| {
        nix::mount::mount(
            Some("overlay"),
            target,
            Some("overlay"),
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some(data.as_str()),
        )
    })
    .with_context(|| {
        let names: Vec<String> = layers.iter().map(|l| l.display().to_string()).collect();
        format!(
            "cannot mount a read-only overlay (lowerdir={}) on {}",
            names.join(":"),
            target.display()
        )
    })
}

/// Moves this process into a mount namespace of its own, copied from the current one, whose
/// mounts do not propagate back (each made `MS_SLAVE`). What it mounts afterwards is seen by
/// it and its children only, and goes away with the last of them. The exception is
/// `shared_dir` (when given): it is made a shared mount point first, in the current
/// namespace, and stays a peer of it, so that what is mounted below it (the pod's network
/// namespace) is seen on both sides.
pub fn private_mount_namespace(shared_dir: Option<&Path>) -> Result<()> {
    let shared = match shared_dir {
        Some(dir) => {
            make_shared_dir(dir)?;
            Some(
                std::fs::canonicalize(dir)
                    .with_context(|| format!("cannot resolve {}", dir.display()))?,
            )
        }
        None => None,
    };
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .context("cannot create a mount namespace (unshare CLONE_NEWNS)")?;
    let Some(shared) = shared else {
        return retry(|| {
            nix::mount::mount(
                None::<&str>,
                "/",
                None::<&str>,
                MsFlags::MS_REC | MsFlags::MS_SLAVE,
                None::<&str>,
            )
        })
        .context("cannot stop mount propagation to the host (MS_REC|MS_SLAVE on /)");
    };
    let table = std::fs::read_to_string("/proc/self/mountinfo")
        .context("cannot read /proc/self/mountinfo")?;
    for point in crate::pod::setup::mount_points(&table) {
        if point.starts_with(&shared) {
            continue;
        }
        match retry(|| {
            nix::mount::mount(
                None::<&str>,
                &point,
                None::<&str>,
                MsFlags::MS_SLAVE,
                None::<&str>,
            )
        }) {
            // Hidden under a later mount: nothing can be mounted there through it.
            Ok(()) | Err(Errno::ENOENT) | Err(Errno::EINVAL) => {}
            Err(e) => {
                return Err(e).with_context(|| {
                    format!(
                        "cannot stop mount propagation to the host (MS_SLAVE on {})",
                        point.display()
                    )
                })
            }
        }
    }
    Ok(())
}

/// Makes `dir` a shared mount point (bound onto itself first if it is not one), as `ip netns`
/// and the stage1 network setup do.
fn make_shared_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let share = || {
        retry(|| {
            nix::mount::mount(
                None::<&str>,
                dir,
                None::<&str>,
                MsFlags::MS_SHARED | MsFlags::MS_REC,
                None::<&str>,
            )
        })
    };
    match share() {
        Ok(()) => return Ok(()),
        Err(Errno::EINVAL) => {}
        Err(e) => return Err(e).with_context(|| format!("cannot make {} shared", dir.display())),
    }
    retry(|| {
        nix::mount::mount(
            Some(dir),
            dir,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
    })
    .with_context(|| format!("cannot bind {} onto itself", dir.display()))?;
    share().with_context(|| format!("cannot make {} shared", dir.display()))
}

/// Bind-mounts `source` onto `target`, optionally making it read-only.
pub fn bind_mount(source: &Path, target: &Path, read_only: bool) -> Result<()> {
    retry(|| {
        nix::mount::mount(
            Some(source),
            target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
    })
    .with_context(|| {
        format!(
            "cannot bind-mount {} on {} (MS_BIND)",
            source.display(),
            target.display()
        )
    })?;
    if read_only {
        let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
        retry(|| nix::mount::mount(None::<&str>, target, None::<&str>, flags, None::<&str>))
            .with_context(|| {
                format!(
                    "cannot remount {} read-only (MS_BIND|MS_REMOUNT|MS_RDONLY)",
                    target.display()
                )
            })?;
    }
    Ok(())
}

/// Unmounts `target`; a busy mount is detached lazily.
pub fn unmount(target: &Path) -> Result<()> {
    match retry(|| nix::mount::umount2(target, MntFlags::UMOUNT_NOFOLLOW)) {
        Ok(()) | Err(Errno::EINVAL) | Err(Errno::ENOENT) => Ok(()),
        Err(Errno::EBUSY) => {
            retry(|| nix::mount::umount2(target, MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW))
                .with_context(|| format!("cannot unmount {} (MNT_DETACH)", target.display()))
        }
        Err(e) => Err(e).with_context(|| format!("cannot unmount {}", target.display())),
    }
}

/// Creates a device node or fifo (used when copying trees with `--no-overlay`).
pub fn mknod(path: &Path, mode: u32, rdev: u64) -> Result<()> {
    let c = cstr(path.as_os_str())?;
    // SAFETY: `c` is a valid NUL-terminated path that outlives the call.
    let rc = unsafe { libc::mknod(c.as_ptr(), mode as libc::mode_t, rdev as libc::dev_t) };
    if rc != 0 {
        return Err(io::Error::last_os_error())
            .with_context(|| format!("cannot mknod {} (mode {mode:o})", path.display()));
    }
    Ok(())
}

/// A new anonymous in-memory file (memfd), close-on-exec and sealable, for an executable
/// copy.
pub fn memfd(name: &str) -> Result<File> {
    let c = CString::new(name).context("memfd name contains a NUL byte")?;
    let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    // MFD_EXEC (Linux 6.3) keeps the copy executable where vm.memfd_noexec asks for
    // non-executable memfds by default; older kernels do not know the flag.
    const MFD_EXEC: libc::c_uint = 0x10;
    // SAFETY: `c` is a valid C string; memfd_create takes it and plain flags.
    let mut fd = unsafe { libc::memfd_create(c.as_ptr(), flags | MFD_EXEC) };
    if fd < 0 && Errno::last() == Errno::EINVAL {
        // SAFETY: as above.
        fd = unsafe { libc::memfd_create(c.as_ptr(), flags) };
    }
    if fd < 0 {
        return Err(io::Error::last_os_error()).context("cannot create an in-memory file");
    }
    // SAFETY: memfd_create just returned this descriptor, owned by nobody else.
    Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// Seals a memfd against any change of its content or size, and of the seals. With
/// `inheritable`, it is no longer close-on-exec (a script's interpreter opens it by path).
pub fn seal(file: &File, inheritable: bool) -> Result<()> {
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: fcntl on a descriptor we own, with integer arguments.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
        return Err(io::Error::last_os_error()).context("cannot seal the in-memory copy");
    }
    if inheritable {
        fcntl(file, FcntlArg::F_SETFD(FdFlag::empty()))
            .context("cannot clear close-on-exec on the in-memory copy")?;
    }
    Ok(())
}

/// Replaces this process with the program in `file` (execveat with AT_EMPTY_PATH: the file
/// itself, no path that could change). Only returns on failure.
pub fn exec_fd(file: &File, argv: &[String], env: &[(String, String)]) -> anyhow::Error {
    let build = || -> Result<(Vec<CString>, Vec<CString>)> {
        let args = argv
            .iter()
            .map(|a| CString::new(a.as_bytes()).context("argument contains a NUL byte"))
            .collect::<Result<Vec<_>>>()?;
        let envs = env
            .iter()
            .map(|(k, v)| {
                CString::new(format!("{k}={v}")).context("environment contains a NUL byte")
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((args, envs))
    };
    let (args, envs) = match build() {
        Ok(built) => built,
        Err(e) => return e,
    };
    // execveat's prototype takes `char *const[]`; the kernel never writes through them.
    let mut argp: Vec<*mut libc::c_char> = args.iter().map(|a| a.as_ptr().cast_mut()).collect();
    argp.push(std::ptr::null_mut());
    let mut envp: Vec<*mut libc::c_char> = envs.iter().map(|e| e.as_ptr().cast_mut()).collect();
    envp.push(std::ptr::null_mut());
    // SAFETY: both arrays are NULL-terminated and point into `args`/`envs`, alive for the
    // call; execveat only returns on failure.
    unsafe {
        libc::execveat(
            file.as_raw_fd(),
            c"".as_ptr(),
            argp.as_ptr(),
            envp.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    anyhow::Error::new(io::Error::last_os_error()).context(format!(
        "cannot execute the stage1 entrypoint {}",
        argv.first().map(String::as_str).unwrap_or("?")
    ))
}

/// Broken-down local time: (year, month, day, hour, minute, second, utc offset seconds, zone).
pub struct LocalTime {
    pub year: i32,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub offset: i64,
    pub zone: String,
}

/// Converts seconds since the epoch to local time using the system time zone.
pub fn local_time(secs: i64) -> LocalTime {
    let t = secs as libc::time_t;
    // SAFETY: `tm` is plain data; localtime_r fills it and only reads `t`.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the duration of the call.
    let ok = !unsafe { libc::localtime_r(&t, &mut tm) }.is_null();
    if !ok {
        return LocalTime {
            year: 1970,
            month: 1,
            day: 1,
            hour: 0,
            minute: 0,
            second: 0,
            offset: 0,
            zone: "UTC".into(),
        };
    }
    let zone = if tm.tm_zone.is_null() {
        String::from("UTC")
    } else {
        // SAFETY: tm_zone points to a NUL-terminated static string owned by libc.
        unsafe { std::ffi::CStr::from_ptr(tm.tm_zone) }
            .to_string_lossy()
            .into_owned()
    };
    LocalTime {
        year: tm.tm_year + 1900,
        month: (tm.tm_mon + 1) as u32,
        day: tm.tm_mday as u32,
        hour: tm.tm_hour as u32,
        minute: tm.tm_min as u32,
        second: tm.tm_sec as u32,
        offset: tm.tm_gmtoff,
        zone,
    }
}

/// `openat2(2)` of `path` below the directory `dir` with `RESOLVE_BENEATH |
/// RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS` (`O_PATH | O_DIRECTORY`): no component may be a
/// symlink or lead out of `dir`; mount points may be crossed. For paths inside a pod, which its
/// apps (or a compromised stage1) may have replaced with symlinks.
pub fn open_dir_beneath(dir: BorrowedFd<'_>, path: &Path) -> nix::Result<OwnedFd> {
    use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
        .resolve(
            ResolveFlag::RESOLVE_BENEATH
                | ResolveFlag::RESOLVE_NO_SYMLINKS
                | ResolveFlag::RESOLVE_NO_MAGICLINKS,
        );
    retry(|| nix::fcntl::openat2(dir, path, how))
}

/// Whether the directory open at `dir` has no entries besides `.` and `..`.
pub fn dir_is_empty(dir: BorrowedFd<'_>) -> io::Result<bool> {
    // The descriptor's own directory (the magic link is not a path lookup).
    let mut entries = std::fs::read_dir(format!("/proc/self/fd/{}", dir.as_raw_fd()))?;
    Ok(entries.next().is_none())
}

/// Creates the new file `name` in `dir` (`O_CREAT | O_EXCL | O_NOFOLLOW`, mode 0644 less the
/// umask): an existing file or symlink there is `EEXIST`, never opened or followed.
pub fn create_new_at(dir: BorrowedFd<'_>, name: &OsStr) -> nix::Result<File> {
    use nix::fcntl::OFlag;
    use nix::sys::stat::Mode;
    let flags =
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let mode = Mode::from_bits_truncate(0o644);
    retry(|| nix::fcntl::openat(dir, name, flags, mode)).map(File::from)
}

/// `renameat2(2)` within `dir`; with `no_replace`, an existing `to` is `EEXIST`.
pub fn rename_in(
    dir: BorrowedFd<'_>,
    from: &OsStr,
    to: &OsStr,
    no_replace: bool,
) -> nix::Result<()> {
    use nix::fcntl::RenameFlags;
    let flags = if no_replace {
        RenameFlags::RENAME_NOREPLACE
    } else {
        RenameFlags::empty()
    };
    retry(|| nix::fcntl::renameat2(dir, from, dir, to, flags))
}

/// `unlinkat(2)` of a file in `dir`.
pub fn unlink_in(dir: BorrowedFd<'_>, name: &OsStr) -> nix::Result<()> {
    retry(|| nix::unistd::unlinkat(dir, name, nix::unistd::UnlinkatFlags::NoRemoveDir))
}

/// Lets SIGPIPE end the process silently, as it does a Go program (Rust ignores it, which
/// turns a closed stdout into a panic in `println!`).
pub fn default_sigpipe() {
    // SAFETY: setting a signal's disposition to SIG_DFL has no memory-safety preconditions.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
}

/// The uid of the process at the other end of a Unix socket (SO_PEERCRED).
pub fn peer_uid(socket: BorrowedFd<'_>) -> io::Result<u32> {
    let creds = nix::sys::socket::getsockopt(&socket, nix::sys::socket::sockopt::PeerCredentials)
        .map_err(io::Error::from)?;
    Ok(creds.uid())
}
