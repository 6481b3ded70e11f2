//! The kernel calls networking needs: named network namespaces (bind-mounted like
//! `ip netns add`), the PID namespace for later children, and interface addresses.
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use anyhow::{anyhow, Context, Result};

fn cpath(p: &Path) -> Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .with_context(|| format!("{} contains a NUL byte", p.display()))
}

fn check(rc: libc::c_int, what: impl FnOnce() -> String) -> Result<()> {
    if rc < 0 {
        return Err(io::Error::last_os_error()).with_context(what);
    }
    Ok(())
}

fn mount(source: &CString, target: &CString, flags: libc::c_ulong) -> io::Result<()> {
    // SAFETY: valid NUL-terminated strings alive for the call; no data argument.
    let rc = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            c"none".as_ptr(),
            flags,
            std::ptr::null(),
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Makes `dir` a shared mount point (binding it onto itself first if it is not a mount point),
/// so that a namespace unmounted here is unmounted in every mount namespace that copied it,
/// and can be freed.
pub fn make_shared_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let c = cpath(dir)?;
    let empty = CString::default();
    match mount(&empty, &c, libc::MS_SHARED | libc::MS_REC) {
        Ok(()) => return Ok(()),
        Err(e) if e.raw_os_error() != Some(libc::EINVAL) => {
            return Err(e).with_context(|| format!("cannot make {} shared", dir.display()))
        }
        Err(_) => {}
    }
    mount(&c, &c, libc::MS_BIND | libc::MS_REC)
        .with_context(|| format!("cannot bind {} onto itself", dir.display()))?;
    mount(&empty, &c, libc::MS_SHARED | libc::MS_REC)
        .with_context(|| format!("cannot make {} shared", dir.display()))
}

/// Creates a network namespace with `lo` up and binds it on `path` (a new file). The
/// namespace is made by a short-lived thread, so the caller's own stays as it was.
pub fn create_netns(path: &Path) -> Result<()> {
    let target = cpath(path)?;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    let made = std::thread::spawn(move || -> Result<()> {
        // SAFETY: unshare only changes this thread's network namespace.
        check(unsafe { libc::unshare(libc::CLONE_NEWNET) }, || {
            "cannot create a network namespace (unshare CLONE_NEWNET)".into()
        })?;
        loopback_up()?;
        let source = CString::new("/proc/thread-self/ns/net").expect("no NUL");
        mount(&source, &target, libc::MS_BIND)
            .with_context(|| format!("cannot bind the network namespace on {target:?}"))
    })
    .join()
    .map_err(|_| anyhow!("the thread creating the network namespace panicked"))?;
    if made.is_err() {
        let _ = std::fs::remove_file(path);
    }
    made
}

/// Unmounts and removes a namespace made by [`create_netns`]; a missing one is no error.
pub fn destroy_netns(path: &Path) -> Result<()> {
    let c = cpath(path)?;
    // SAFETY: a valid path string.
    if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } < 0 {
        let e = io::Error::last_os_error();
        if !matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOENT)) {
            return Err(e).with_context(|| format!("cannot unmount {}", path.display()));
        }
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("cannot remove {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// Opens a namespace file for `setns`.
pub fn open_ns(path: &Path) -> Result<OwnedFd> {
    let c = cpath(path)?;
    // SAFETY: a valid path string; the result is checked before use.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    check(fd, || format!("cannot open {}", path.display()))?;
    // SAFETY: open just returned this descriptor, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The PID namespace this process runs in. The run entrypoint moves the namespace of its
/// future children into the pod's; processes it starts afterwards (plugins tearing a network
/// down) must come back to this one, or they would become the pod's PID 1.
pub struct OwnPidNs(OwnedFd);

impl OwnPidNs {
    pub fn open() -> Result<OwnPidNs> {
        open_ns(Path::new("/proc/self/ns/pid")).map(OwnPidNs)
    }

    /// Makes future children start in this namespace again.
    pub fn restore_for_children(&self) -> Result<()> {
        // SAFETY: setns on a namespace descriptor we own.
        check(
            unsafe { libc::setns(self.0.as_raw_fd(), libc::CLONE_NEWPID) },
            || "cannot return to stage1's PID namespace".into(),
        )
    }
}

/// Sets `lo` up in the calling thread's network namespace.
fn loopback_up() -> Result<()> {
    // SAFETY: raw socket and ioctl calls on stack data; the socket is closed by OwnedFd.
    unsafe {
        let sock = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        check(sock, || "cannot open a socket to configure lo".into())?;
        let sock = OwnedFd::from_raw_fd(sock);
        let mut req: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo\0".iter().enumerate() {
            req.ifr_name[i] = *b as libc::c_char;
        }
        check(
            libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req),
            || "cannot read lo's flags".into(),
        )?;
        req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        check(
            libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req),
            || "cannot set lo up".into(),
        )
    }
}

/// Names of the host's non-loopback interfaces that carry `ip`.
pub fn interfaces_with(ip: std::net::Ipv4Addr) -> Result<Vec<String>> {
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list`, freed below.
    check(unsafe { libc::getifaddrs(&mut list) }, || {
        "cannot list the host's interfaces".into()
    })?;
    let mut names = Vec::new();
    let mut cur = list;
    while !cur.is_null() {
        // SAFETY: `cur` walks the list getifaddrs returned, which stays valid until freed.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_addr.is_null() || ifa.ifa_flags & libc::IFF_LOOPBACK as u32 != 0 {
            continue;
        }
        // SAFETY: as above; sa_family tells which sockaddr it is.
        let family = unsafe { (*ifa.ifa_addr).sa_family };
        if i32::from(family) != libc::AF_INET {
            continue;
        }
        // SAFETY: an AF_INET address is a sockaddr_in.
        let sin = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
        if std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)) == ip {
            // SAFETY: ifa_name is a NUL-terminated string owned by the list.
            let name = unsafe { std::ffi::CStr::from_ptr(ifa.ifa_name) };
            names.push(name.to_string_lossy().into_owned());
        }
    }
    // SAFETY: the list getifaddrs allocated, not used after this.
    unsafe { libc::freeifaddrs(list) };
    Ok(names)
}

/// An exclusive `flock` on a directory, held while the descriptor (or a forked copy) is open.
pub fn lock_dir(dir: &Path) -> Result<OwnedFd> {
    let c = cpath(dir)?;
    // SAFETY: a valid path string; the result is checked before use.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    check(fd, || format!("cannot open {}", dir.display()))?;
    // SAFETY: open just returned this descriptor, owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    loop {
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_EX) } == 0 {
            return Ok(fd);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e).with_context(|| format!("cannot lock {}", dir.display()));
        }
    }
}

/// Closes every descriptor from 3 up except those in `keep` (raw calls only: after `fork`).
///
/// # Safety
/// Only in a process that owns no descriptor it still needs beyond `keep` and 0-2.
unsafe fn close_all_but(keep: &mut [RawFd]) {
    keep.sort_unstable();
    let mut from: u32 = 3;
    for &fd in keep.iter() {
        let fd = fd as u32;
        if fd > from {
            libc::syscall(libc::SYS_close_range, from, fd - 1, 0u32);
        }
        from = from.max(fd + 1);
    }
    libc::syscall(libc::SYS_close_range, from, u32::MAX, 0u32);
}

/// Forks a detached process that runs `work` and exits. Returns once the child has closed
/// every descriptor but `keep`: it must not hold the pod lock (the pod would look running)
/// nor the caller's pipes (whoever waits for their end would wait for it too). The child
/// gets `/dev/null` as stdin and `log` (appended, created) as stdout and stderr.
pub fn spawn_detached(keep: &OwnedFd, log: &Path, work: impl FnOnce()) -> Result<()> {
    let log = cpath(log)?;
    let mut ends = [0 as RawFd; 2];
    // SAFETY: `ends` is a valid array for pipe2 to fill.
    check(
        unsafe { libc::pipe2(ends.as_mut_ptr(), libc::O_CLOEXEC) },
        || "cannot create a pipe".into(),
    )?;
    // SAFETY: pipe2 just returned these descriptors, owned by nobody else.
    let (read_end, write_end) =
        unsafe { (OwnedFd::from_raw_fd(ends[0]), OwnedFd::from_raw_fd(ends[1])) };
    // SAFETY: stage1 is single-threaded here; the child only makes system calls, runs `work`
    // and leaves with _exit.
    let pid = unsafe { libc::fork() };
    check(pid, || "cannot fork the network teardown".into())?;
    if pid > 0 {
        drop(write_end);
        let mut byte = 0u8;
        // End of file: the child closed its descriptors (or died).
        // SAFETY: reading one byte into a valid buffer.
        while unsafe { libc::read(read_end.as_raw_fd(), (&mut byte as *mut u8).cast(), 1) } < 0
            && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted
        {}
        return Ok(());
    }
    // SAFETY (child): descriptor juggling on numbers this process owns, then _exit.
    unsafe {
        libc::setsid();
        close_all_but(&mut [keep.as_raw_fd()]);
        // That closed the pipe's write end too: the caller goes on.
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        let out = libc::open(
            log.as_ptr(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_APPEND | libc::O_NOFOLLOW,
            0o600,
        );
        if null < 0 || out < 0 {
            libc::_exit(1);
        }
        libc::dup2(null, 0);
        libc::dup2(out, 1);
        libc::dup2(out, 2);
        work();
        libc::_exit(0);
    }
}
