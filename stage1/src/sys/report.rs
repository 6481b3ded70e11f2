//! The report channel from the pod's PID 1 to stage1 while it sets the pod up: a CLOEXEC
//! `SOCK_SEQPACKET` pair, so every message arrives whole and the end of the channel (EOF) is
//! the moment `execve(stage2-init)` succeeded.
//!
//! ```text
//!  [index u32, errno i32]          an op failed; the child exits 254
//!  "c" + SCM_RIGHTS [fd]           the console's pty master (console op)
//!  "u"                             map my new user namespace; stage1 answers "k"
//!  EOF                             stage2-init runs
//! ```
use std::os::fd::{BorrowedFd, OwnedFd, RawFd};

use anyhow::Result;

use super::channel::{recv, send_with_fds};

/// What the child reported.
pub enum Report {
    Started,
    Console(OwnedFd),
    /// The child entered its user namespace and waits for its id maps.
    Userns,
    Failed {
        index: usize,
        errno: i32,
    },
}

const CONSOLE_TAG: u8 = b'c';
const USERNS_TAG: u8 = b'u';

/// Child side: op `index` failed with `err`.
///
/// # Safety
/// Async-signal-safe: one `send` of a stack buffer.
pub(super) unsafe fn send_failure(fd: RawFd, index: usize, err: i32) {
    let mut msg = [0u8; 8];
    msg[..4].copy_from_slice(&(index as u32).to_ne_bytes());
    msg[4..].copy_from_slice(&err.to_ne_bytes());
    libc::send(fd, msg.as_ptr().cast(), msg.len(), libc::MSG_NOSIGNAL);
}

/// Child side: passes `master` to stage1. Returns -1 with errno set on failure.
///
/// # Safety
/// Async-signal-safe: one `sendmsg` of stack data.
pub(super) unsafe fn send_console(fd: RawFd, master: libc::c_int) -> libc::c_int {
    if send_with_fds(fd, &[CONSOLE_TAG], &[master]) < 0 {
        -1
    } else {
        0
    }
}

/// Parent side: the next report.
pub fn receive(fd: BorrowedFd<'_>) -> Result<Report> {
    let mut message = recv(fd, 8)?;
    match (message.data.len(), message.fds.pop()) {
        (0, None) => Ok(Report::Started),
        (1, Some(fd)) if message.data[0] == CONSOLE_TAG => Ok(Report::Console(fd)),
        (1, None) if message.data[0] == USERNS_TAG => Ok(Report::Userns),
        (8, None) => Ok(Report::Failed {
            index: u32::from_ne_bytes(message.data[..4].try_into().expect("bug: 4 bytes")) as usize,
            errno: i32::from_ne_bytes(message.data[4..].try_into().expect("bug: 4 bytes")),
        }),
        (n, _) => anyhow::bail!("garbled setup report from the pod's PID 1 ({n} bytes)"),
    }
}
