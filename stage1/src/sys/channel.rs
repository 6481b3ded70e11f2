//! `SOCK_SEQPACKET` messages with descriptors attached (`SCM_RIGHTS`): the setup report from
//! the pod's PID 1 and the `rkt enter` requests to stage2-init.
use std::io;
use std::mem;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr;

use anyhow::{Context, Result};

use super::{errno, OpenHow, RESOLVE_BENEATH, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS};

/// Most descriptors a message carries.
pub const MAX_FDS: usize = 3;

/// Room for one `SCM_RIGHTS` header and [`MAX_FDS`] ints, aligned for `cmsghdr`.
type ControlBuffer = [u64; 8];

/// Sends `data` with `fds` attached. Allocation-free, so the pod's PID 1 may call it after
/// `fork`. Returns -1 with errno set on failure.
pub fn send_with_fds(fd: RawFd, data: &[u8], fds: &[RawFd]) -> libc::ssize_t {
    let fds = &fds[..fds.len().min(MAX_FDS)];
    let mut control: ControlBuffer = [0; 8];
    let mut iov = libc::iovec {
        iov_base: data.as_ptr().cast_mut().cast(),
        iov_len: data.len(),
    };
    // SAFETY: a zeroed msghdr is valid; every pointer set below outlives the call, and the
    // control buffer has room for CMSG_SPACE(MAX_FDS ints), inside which the header and the
    // descriptors are written.
    unsafe {
        let mut msg: libc::msghdr = mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        if !fds.is_empty() {
            let bytes = mem::size_of_val(fds) as u32;
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = libc::CMSG_SPACE(bytes) as usize;
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(bytes) as usize;
            let slots = libc::CMSG_DATA(cmsg).cast::<libc::c_int>();
            for (i, fd) in fds.iter().enumerate() {
                ptr::write_unaligned(slots.add(i), *fd);
            }
        }
        loop {
            let n = libc::sendmsg(fd, &msg, libc::MSG_NOSIGNAL);
            if n >= 0 || errno() != libc::EINTR {
                return n;
            }
        }
    }
}

/// Sends one message (see [`send_with_fds`]).
pub fn send(fd: BorrowedFd<'_>, data: &[u8], fds: &[BorrowedFd<'_>]) -> Result<()> {
    let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
    if send_with_fds(fd.as_raw_fd(), data, &raw) < 0 {
        return Err(io::Error::last_os_error()).context("cannot send to the pod");
    }
    Ok(())
}

/// One received message: its bytes and its descriptors (close-on-exec).
pub struct Message {
    pub data: Vec<u8>,
    pub fds: Vec<OwnedFd>,
}

/// Receives one message of at most `max` bytes. An empty message without descriptors is the
/// peer closing the connection.
pub fn recv(fd: BorrowedFd<'_>, max: usize) -> Result<Message> {
    let mut data = vec![0u8; max];
    let mut control: ControlBuffer = [0; 8];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    // SAFETY: a zeroed msghdr is valid; the buffers set below outlive the call.
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = mem::size_of_val(&control);
    let n = loop {
        // SAFETY: `msg` points at live buffers of the lengths it states.
        let n = unsafe { libc::recvmsg(fd.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n >= 0 {
            break n as usize;
        }
        if errno() != libc::EINTR {
            return Err(io::Error::last_os_error()).context("cannot receive from the pod");
        }
    };
    let mut fds = Vec::new();
    // SAFETY: the CMSG_* macros walk the control buffer recvmsg filled, within
    // msg_controllen; each SCM_RIGHTS payload is an array of ints now owned by us.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let payload = (*cmsg).cmsg_len - libc::CMSG_LEN(0) as usize;
                let slots = libc::CMSG_DATA(cmsg).cast::<libc::c_int>();
                for i in 0..payload / mem::size_of::<libc::c_int>() {
                    fds.push(OwnedFd::from_raw_fd(ptr::read_unaligned(slots.add(i))));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    if msg.msg_flags & (libc::MSG_TRUNC | libc::MSG_CTRUNC) != 0 {
        anyhow::bail!("a message from the pod was larger than {max} bytes");
    }
    data.truncate(n);
    Ok(Message { data, fds })
}

/// Opens the Unix socket at `rel` below the current directory as an O_PATH descriptor,
/// following no symlink on the way (the path lies in the pod, which may have planted one) and
/// refusing anything that is not a socket.
pub fn open_socket(rel: &Path) -> io::Result<OwnedFd> {
    open_socket_at(libc::AT_FDCWD, rel)
}

/// [`open_socket`] below the root directory of process `pid` (`/proc/<pid>/root`): the
/// pod's own view of its stage1 root, in its mount namespace.
pub fn open_socket_in_root_of(pid: i32, rel: &Path) -> io::Result<OwnedFd> {
    let root = std::fs::File::open(format!("/proc/{pid}/root"))?;
    open_socket_at(root.as_raw_fd(), rel)
}

fn open_socket_at(dir: RawFd, rel: &Path) -> io::Result<OwnedFd> {
    let c = std::ffi::CString::new(rel.as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let how = OpenHow {
        flags: (libc::O_PATH | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve: RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
    };
    // SAFETY: `c` and `how` are live locals of the sizes passed.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir,
            c.as_ptr(),
            ptr::addr_of!(how),
            mem::size_of::<OpenHow>(),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: openat2 just returned this descriptor (an int), owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
    // SAFETY: a zeroed stat is valid plain data for fstat to fill.
    let mut st: libc::stat = unsafe { mem::zeroed() };
    // SAFETY: `st` is a live local.
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if st.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        return Err(io::Error::from_raw_os_error(libc::ENOTSOCK));
    }
    Ok(fd)
}

/// A `SOCK_SEQPACKET` connection to the Unix socket `socket` (an O_PATH descriptor opened
/// without following symlinks), connected through `/proc/self/fd`, so the path is never
/// resolved again.
pub fn connect(socket: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    let kind = libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC;
    // SAFETY: plain integer arguments.
    let fd = unsafe { libc::socket(libc::AF_UNIX, kind, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: socket just returned this descriptor, owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let path = format!("/proc/self/fd/{}", socket.as_raw_fd());
    let bytes = Path::new(&path).as_os_str().as_bytes();
    // SAFETY: a zeroed sockaddr_un is valid; the short path is copied in below.
    let mut addr: libc::sockaddr_un = unsafe { mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (dst, src) in addr.sun_path.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    loop {
        // SAFETY: `addr` is a live, initialised sockaddr_un of the size passed.
        let rc = unsafe {
            libc::connect(
                fd.as_raw_fd(),
                ptr::addr_of!(addr).cast(),
                mem::size_of::<libc::sockaddr_un>() as libc::socklen_t,
            )
        };
        if rc == 0 {
            return Ok(fd);
        }
        if errno() != libc::EINTR {
            return Err(io::Error::last_os_error());
        }
    }
}
