//! Pseudo-terminals from the pod's own devpts instance, for `rkt enter` sessions run on a
//! terminal: the entered command gets a new terminal, never the caller's.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::Error;

/// The pod's pty multiplexer: stage1 mounts a new devpts instance at /dev/pts and links
/// /dev/ptmx to its ptmx.
const PTMX: &std::ffi::CStr = c"/dev/ptmx";

/// A new pty: (master, slave), both close-on-exec, the slave unlocked and sized.
pub fn open_pty(rows: u16, cols: u16) -> Result<(OwnedFd, OwnedFd), Error> {
    // SAFETY: a literal C string and plain flags.
    let master = unsafe {
        libc::open(
            PTMX.as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if master == -1 {
        return Err(Error::last("open /dev/ptmx"));
    }
    // SAFETY: open just returned this descriptor, owned by nobody else.
    let master = unsafe { OwnedFd::from_raw_fd(master) };
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads an int through the pointer, a live local.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) } == -1 {
        return Err(Error::last("ioctl TIOCSPTLCK"));
    }
    let size = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize through the pointer, a live local.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &size) } == -1 {
        return Err(Error::last("ioctl TIOCSWINSZ"));
    }
    // TIOCGPTPEER opens the slave through the master, never by a path a pod could swap.
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: TIOCGPTPEER takes open flags as an integer argument.
    let slave = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, flags) };
    if slave == -1 {
        return Err(Error::last("ioctl TIOCGPTPEER"));
    }
    // SAFETY: the ioctl just returned this descriptor, owned by nobody else.
    Ok((master, unsafe { OwnedFd::from_raw_fd(slave) }))
}
