//! The app's root and working directory, for a starting process: a mount namespace whose
//! root is the app's (pivot_root, the old root detached), and the working directory resolved
//! inside it. Runs in the child between `fork` and `execve`: raw system calls only.

use std::ptr;

use super::spawn::{check, errno, ExecSpec, Step};

/// A private mount namespace whose root is the app's root. chroot would leave stage1's root
/// reachable to a process holding CAP_SYS_CHROOT (the classic chroot escape); after
/// pivot_root and detaching the old root, this namespace has nothing outside the app's root.
pub(super) fn enter_root(spec: &ExecSpec) -> Result<(), Step> {
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
    if spec.root.as_bytes() == b"/" {
        // Already the root (only in tests outside a pod): nothing to pivot into.
        // SAFETY: a NUL-terminated literal.
        return check(
            unsafe { libc::chdir(c"/".as_ptr()) }.into(),
            Step::PivotRoot,
        );
    }
    // pivot_root needs the new root to be a mount point; binding it onto itself makes it one
    // and keeps its flags (read-only, nodev) and, recursively, its submounts.
    // SAFETY: `spec.root` is a C string built before fork; NULL type and data for a bind.
    let rc = unsafe {
        libc::mount(
            spec.root.as_ptr(),
            spec.root.as_ptr(),
            ptr::null(),
            libc::MS_BIND | libc::MS_REC,
            ptr::null(),
        )
    };
    check(rc.into(), Step::BindRoot)?;
    let dot = c".".as_ptr();
    // SAFETY: C strings built before fork or literals; pivot_root(".", ".") stacks the old
    // root on the new one, and the lazy unmount of "." then removes the old root.
    unsafe {
        check(libc::chdir(spec.root.as_ptr()).into(), Step::PivotRoot)?;
        check(
            libc::syscall(libc::SYS_pivot_root, dot, dot),
            Step::PivotRoot,
        )?;
        check(libc::umount2(dot, libc::MNT_DETACH).into(), Step::PivotRoot)?;
        check(libc::chdir(c"/".as_ptr()).into(), Step::PivotRoot)
    }
}

/// `struct open_how` of openat2(2).
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_IN_ROOT: u64 = 0x10;

/// Changes to the working directory, resolved by the kernel inside the root (symlinks
/// followed as in a chroot, `/proc/<pid>/...` magic links refused). Kernels before 5.6 have
/// no openat2; there a plain chdir, still inside the pivoted root, has to do.
pub(super) fn change_directory(spec: &ExecSpec) -> Result<(), Step> {
    let how = OpenHow {
        flags: (libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve: RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    };
    // SAFETY: `spec.cwd` is a C string built before fork and `how` a live local of the size
    // passed; the cwd is "/", the root the path is resolved in.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            libc::AT_FDCWD,
            spec.cwd.as_ptr(),
            ptr::addr_of!(how),
            std::mem::size_of::<OpenHow>(),
        )
    };
    if fd == -1 && errno() == libc::ENOSYS {
        // SAFETY: as above.
        return check(
            unsafe { libc::chdir(spec.cwd.as_ptr()) }.into(),
            Step::Chdir,
        );
    }
    check(fd, Step::Chdir)?;
    // openat2 returned a descriptor, which fits an int.
    let fd = fd as libc::c_int;
    // SAFETY: `fd` was just opened and is closed right after; plain integers.
    let rc = unsafe { libc::fchdir(fd) };
    let err = errno();
    // SAFETY: as above.
    unsafe { libc::close(fd) };
    if rc == -1 {
        // SAFETY: restores fchdir's errno for the report.
        unsafe { *libc::__errno_location() = err };
        return Err(Step::Chdir);
    }
    Ok(())
}
