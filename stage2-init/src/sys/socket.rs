//! The `rkt enter` control socket: a listening `SOCK_SEQPACKET` Unix socket (one message per
//! request or reply, never split or merged) and its connections, which pass descriptors with
//! `SCM_RIGHTS`.

use std::ffi::CString;
use std::io;
use std::mem;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr;

use super::Error;

/// Most descriptors one message may carry (stdin, stdout, stderr).
pub const MAX_FDS: usize = 3;

/// A bound, listening, non-blocking socket.
pub struct Listener {
    fd: OwnedFd,
}

/// An accepted connection (non-blocking).
pub struct Connection {
    fd: OwnedFd,
}

/// One message read from a connection.
pub struct Received {
    pub data: Vec<u8>,
    pub fds: Vec<OwnedFd>,
    /// The message or its descriptors did not fit and were cut: the peer is misbehaving.
    pub truncated: bool,
}

fn seqpacket() -> Result<OwnedFd, Error> {
    let kind = libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK;
    // SAFETY: plain integer arguments.
    let fd = unsafe { libc::socket(libc::AF_UNIX, kind, 0) };
    if fd == -1 {
        return Err(Error::last("socket AF_UNIX SOCK_SEQPACKET"));
    }
    // SAFETY: socket just returned this descriptor, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

impl Listener {
    /// Binds `path` (replacing a stale socket left by an earlier init) readable and writable by
    /// root only, and listens.
    pub fn bind(path: &Path) -> Result<Self, Error> {
        let op = |what: &str| format!("{what} {}", path.display());
        let bytes = path.as_os_str().as_bytes();
        // SAFETY: a zeroed sockaddr_un is valid: family set below, path NUL-terminated.
        let mut addr: libc::sockaddr_un = unsafe { mem::zeroed() };
        if bytes.len() >= addr.sun_path.len() || bytes.contains(&0) {
            let err = io::Error::new(io::ErrorKind::InvalidInput, "socket path too long");
            return Err(Error::new(op("bind"), err));
        }
        addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
        for (dst, src) in addr.sun_path.iter_mut().zip(bytes) {
            *dst = *src as libc::c_char;
        }
        let c_path = CString::new(bytes)
            .map_err(|_| Error::new(op("bind"), io::Error::from_raw_os_error(libc::EINVAL)))?;
        // SAFETY: a valid C string; a missing file is fine.
        if unsafe { libc::unlink(c_path.as_ptr()) } == -1
            && io::Error::last_os_error().raw_os_error() != Some(libc::ENOENT)
        {
            return Err(Error::last(op("unlink")));
        }
        let fd = seqpacket()?;
        // The socket file takes its mode from the umask at bind time: root only from the start.
        // SAFETY: umask takes and returns plain integers.
        let old = unsafe { libc::umask(0o177) };
        // SAFETY: `addr` is a live, initialised sockaddr_un of the size passed.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                ptr::addr_of!(addr).cast(),
                mem::size_of::<libc::sockaddr_un>() as libc::socklen_t,
            )
        };
        let bind_err = io::Error::last_os_error();
        // SAFETY: as above.
        unsafe { libc::umask(old) };
        if rc == -1 {
            return Err(Error::new(op("bind"), bind_err));
        }
        // SAFETY: plain integer arguments.
        if unsafe { libc::listen(fd.as_raw_fd(), 8) } == -1 {
            return Err(Error::last(op("listen")));
        }
        Ok(Self { fd })
    }

    pub fn as_fd(&self) -> BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.fd.as_fd()
    }

    /// The next pending connection, if any.
    pub fn accept(&self) -> Result<Option<Connection>, Error> {
        let flags = libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK;
        loop {
            // SAFETY: NULL address pointers: the peer address is not wanted.
            let fd = unsafe {
                libc::accept4(self.fd.as_raw_fd(), ptr::null_mut(), ptr::null_mut(), flags)
            };
            if fd >= 0 {
                // SAFETY: accept4 just returned this descriptor, owned by nobody else.
                let fd = unsafe { OwnedFd::from_raw_fd(fd) };
                return Ok(Some(Connection { fd }));
            }
            match io::Error::last_os_error().raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EAGAIN | libc::ECONNABORTED) => return Ok(None),
                _ => return Err(Error::last("accept4")),
            }
        }
    }
}

impl Connection {
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.fd.as_fd()
    }

    /// The peer's pid as seen from our pid namespace (0 for a process outside it) and uid.
    pub fn peer(&self) -> Result<(libc::pid_t, libc::uid_t), Error> {
        // SAFETY: a zeroed ucred is valid plain data that getsockopt fills.
        let mut cred: libc::ucred = unsafe { mem::zeroed() };
        let mut len = mem::size_of::<libc::ucred>() as libc::socklen_t;
        // SAFETY: `cred` and `len` are live locals of the sizes given.
        let rc = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PEERCRED,
                ptr::addr_of_mut!(cred).cast(),
                &mut len,
            )
        };
        if rc == -1 {
            return Err(Error::last("getsockopt SO_PEERCRED"));
        }
        Ok((cred.pid, cred.uid))
    }

    /// Reads one message of at most `max` bytes with up to [`MAX_FDS`] descriptors (made
    /// close-on-exec). `Ok(None)`: nothing to read yet. An empty message without descriptors
    /// means the peer closed the connection.
    pub fn recv(&self, max: usize) -> Result<Option<Received>, Error> {
        let mut data = vec![0u8; max];
        // Aligned room for one SCM_RIGHTS header and MAX_FDS ints.
        let mut control = [0u64; 8];
        // SAFETY: CMSG_SPACE is a pure size computation.
        let space = unsafe { libc::CMSG_SPACE((MAX_FDS * mem::size_of::<libc::c_int>()) as u32) };
        debug_assert!(space as usize <= mem::size_of_val(&control));
        let mut iov = libc::iovec {
            iov_base: data.as_mut_ptr().cast(),
            iov_len: data.len(),
        };
        // SAFETY: a zeroed msghdr is valid; the pointers set below outlive the call.
        let mut msg: libc::msghdr = unsafe { mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = space as usize;
        let n = loop {
            // SAFETY: `msg` points at live buffers of the lengths it states.
            let n = unsafe { libc::recvmsg(self.fd.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
            if n >= 0 {
                break n as usize;
            }
            match io::Error::last_os_error().raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EAGAIN) => return Ok(None),
                _ => return Err(Error::last("recvmsg")),
            }
        };
        let mut fds = Vec::new();
        // SAFETY: the CMSG_* macros walk the control buffer recvmsg filled, within
        // msg_controllen; each SCM_RIGHTS payload is an array of ints.
        unsafe {
            let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
            while !cmsg.is_null() {
                if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                    let payload = (*cmsg).cmsg_len - libc::CMSG_LEN(0) as usize;
                    let data = libc::CMSG_DATA(cmsg).cast::<libc::c_int>();
                    for i in 0..payload / mem::size_of::<libc::c_int>() {
                        fds.push(OwnedFd::from_raw_fd(ptr::read_unaligned(data.add(i))));
                    }
                }
                cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
            }
        }
        data.truncate(n);
        let truncated = msg.msg_flags & (libc::MSG_TRUNC | libc::MSG_CTRUNC) != 0;
        Ok(Some(Received {
            data,
            fds,
            truncated,
        }))
    }

    /// Sends one message, with `fds` attached. Never raises SIGPIPE.
    pub fn send(&self, data: &[u8], fds: &[BorrowedFd<'_>]) -> Result<(), Error> {
        let mut control = [0u64; 8];
        let mut iov = libc::iovec {
            iov_base: data.as_ptr().cast_mut().cast(),
            iov_len: data.len(),
        };
        // SAFETY: a zeroed msghdr is valid; the pointers set below outlive the call.
        let mut msg: libc::msghdr = unsafe { mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        if !fds.is_empty() {
            let fds = &fds[..fds.len().min(MAX_FDS)];
            let bytes = mem::size_of_val(fds) as u32;
            // SAFETY: the control buffer has room for CMSG_SPACE(MAX_FDS ints); the header and
            // payload are written inside it.
            unsafe {
                msg.msg_control = control.as_mut_ptr().cast();
                msg.msg_controllen = libc::CMSG_SPACE(bytes) as usize;
                let cmsg = libc::CMSG_FIRSTHDR(&msg);
                (*cmsg).cmsg_level = libc::SOL_SOCKET;
                (*cmsg).cmsg_type = libc::SCM_RIGHTS;
                (*cmsg).cmsg_len = libc::CMSG_LEN(bytes) as usize;
                let data = libc::CMSG_DATA(cmsg).cast::<libc::c_int>();
                for (i, fd) in fds.iter().enumerate() {
                    ptr::write_unaligned(data.add(i), fd.as_raw_fd());
                }
            }
        }
        loop {
            // SAFETY: `msg` points at live buffers of the lengths it states.
            let n = unsafe { libc::sendmsg(self.fd.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) };
            if n >= 0 {
                return Ok(());
            }
            if io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                return Err(Error::last("sendmsg"));
            }
        }
    }
}
