//! Resolving a mount op's source or target in the child after `fork`: without allocating, a
//! path inside an app's root is opened with openat2 and named through `/proc/self/fd/<n>`.
use super::pod::Target;
use super::{errno, OpenHow, RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS};

/// `/proc/self/fd/<n>` built without allocating (the child may not allocate).
pub(super) struct ProcFdPath {
    buf: [u8; 32],
}

impl ProcFdPath {
    pub(super) fn new() -> ProcFdPath {
        ProcFdPath { buf: [0; 32] }
    }

    pub(super) fn set(&mut self, fd: libc::c_int) {
        const PREFIX: &[u8] = b"/proc/self/fd/";
        self.buf[..PREFIX.len()].copy_from_slice(PREFIX);
        let mut digits = [0u8; 12];
        let mut n = fd.max(0) as u32;
        let mut len = 0;
        loop {
            digits[len] = b'0' + (n % 10) as u8;
            len += 1;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        for i in 0..len {
            self.buf[PREFIX.len() + i] = digits[len - 1 - i];
        }
        self.buf[PREFIX.len() + len] = 0;
    }

    pub(super) fn as_ptr(&self) -> *const libc::c_char {
        self.buf.as_ptr() as *const libc::c_char
    }
}

/// `openat2(rootfd, path, O_PATH, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`.
///
/// # Safety
/// Async-signal-safe: one raw system call on data owned by the caller.
unsafe fn open_in_root(rootfd: libc::c_int, path: &std::ffi::CStr) -> libc::c_int {
    let how = OpenHow {
        flags: (libc::O_PATH | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve: RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    };
    libc::syscall(
        libc::SYS_openat2,
        rootfd,
        path.as_ptr(),
        &how as *const OpenHow,
        std::mem::size_of::<OpenHow>(),
    ) as libc::c_int
}

/// Creates what is missing of a mount target inside `root` (see `sys::MakeTarget`): each
/// prefix in `steps` is opened in the root, and a missing one is created by name in the
/// directory the previous one resolved to, so nothing is made outside the root. Returns 0,
/// or -1 with errno set.
///
/// # Safety
/// Async-signal-safe: only raw system calls on data owned by the caller.
pub(super) unsafe fn make_target(
    root: &std::ffi::CStr,
    steps: &[(std::ffi::CString, std::ffi::CString)],
    file: bool,
) -> libc::c_int {
    let rootfd = libc::open(
        root.as_ptr(),
        libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
    );
    if rootfd < 0 {
        return -1;
    }
    // The directory the last component resolved to (the root to start with).
    let mut parent = rootfd;
    let mut rc = 0;
    for (i, (prefix, name)) in steps.iter().enumerate() {
        let mut fd = open_in_root(rootfd, prefix);
        if fd < 0 && errno() == libc::ENOENT {
            let made = if file && i + 1 == steps.len() {
                let flags = libc::O_WRONLY
                    | libc::O_CREAT
                    | libc::O_EXCL
                    | libc::O_NOFOLLOW
                    | libc::O_NOCTTY
                    | libc::O_CLOEXEC;
                let created = libc::openat(parent, name.as_ptr(), flags, 0o644);
                if created >= 0 {
                    libc::close(created);
                }
                created
            } else {
                libc::mkdirat(parent, name.as_ptr(), 0o755)
            };
            // EEXIST: a dangling symlink; opening it again below reports ENOENT.
            if made >= 0 || errno() == libc::EEXIST {
                fd = open_in_root(rootfd, prefix);
            }
        }
        if fd < 0 {
            rc = -1;
            break;
        }
        if parent != rootfd {
            libc::close(parent);
        }
        parent = fd;
    }
    let err = errno();
    if parent != rootfd {
        libc::close(parent);
    }
    libc::close(rootfd);
    set_errno(err);
    rc
}

/// Opens a mount target as an O_PATH descriptor (for in-root targets) and points `path` at
/// it; plain paths are used as they are. Returns the descriptor to close, or -1.
///
/// # Safety
/// Async-signal-safe: only raw system calls on data owned by the caller.
unsafe fn open_target(target: &Target, path: &mut ProcFdPath) -> Result<libc::c_int, i32> {
    match target {
        Target::Path(p) => {
            let bytes = p.as_bytes_with_nul();
            if bytes.len() > path.buf.len() {
                // Long plain paths are passed through a descriptor as well.
                let fd = libc::open(p.as_ptr(), libc::O_PATH | libc::O_CLOEXEC);
                if fd < 0 {
                    return Err(errno());
                }
                path.set(fd);
                return Ok(fd);
            }
            path.buf[..bytes.len()].copy_from_slice(bytes);
            Ok(-1)
        }
        Target::InRoot { root, path: rel } => {
            let rootfd = libc::open(
                root.as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            );
            if rootfd < 0 {
                return Err(errno());
            }
            let how = OpenHow {
                flags: (libc::O_PATH | libc::O_CLOEXEC) as u64,
                mode: 0,
                resolve: RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
            };
            let fd = libc::syscall(
                libc::SYS_openat2,
                rootfd,
                rel.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            ) as libc::c_int;
            let err = errno();
            libc::close(rootfd);
            if fd < 0 {
                return Err(err);
            }
            path.set(fd);
            Ok(fd)
        }
    }
}

/// # Safety
/// Closes a descriptor returned by `open_target`.
unsafe fn close_target(fd: libc::c_int) {
    if fd >= 0 {
        libc::close(fd);
    }
}

pub(super) fn set_errno(e: i32) {
    // SAFETY: __errno_location returns this thread's errno slot.
    unsafe { *libc::__errno_location() = e };
}

/// Resolves `target` (see [`open_target`]) and calls `f` with a path naming it; a missing
/// optional target is skipped. Returns `f`'s result, or -1 with errno set.
///
/// # Safety
/// Async-signal-safe as long as `f` is.
pub(super) unsafe fn at_target(
    target: &Target,
    optional: bool,
    f: impl FnOnce(*const libc::c_char) -> libc::c_int,
) -> libc::c_int {
    let mut path = ProcFdPath::new();
    match open_target(target, &mut path) {
        Ok(fd) => {
            let rc = f(path.as_ptr());
            let err = errno();
            close_target(fd);
            set_errno(err);
            rc
        }
        Err(libc::ENOENT) if optional => 0,
        Err(e) => {
            set_errno(e);
            -1
        }
    }
}

/// [`at_target`] for two targets (a bind's source and target).
///
/// # Safety
/// Async-signal-safe as long as `f` is.
pub(super) unsafe fn at_targets(
    source: &Target,
    target: &Target,
    optional: bool,
    f: impl FnOnce(*const libc::c_char, *const libc::c_char) -> libc::c_int,
) -> libc::c_int {
    let mut source_path = ProcFdPath::new();
    let source_fd = match open_target(source, &mut source_path) {
        Ok(fd) => fd,
        Err(libc::ENOENT) if optional => return 0,
        Err(e) => {
            set_errno(e);
            return -1;
        }
    };
    let rc = at_target(target, optional, |path| f(source_path.as_ptr(), path));
    let err = errno();
    close_target(source_fd);
    set_errno(err);
    rc
}
