//! The caller's side of a pod console: copies between the caller's terminal and the master of
//! a pty inside the pod, as `runc -t` and systemd-nspawn do. The pod only ever holds the pty's
//! slave; the caller's terminal stays outside it.
//!
//! Which of the caller's descriptors 0-2 a pty replaces is decided per descriptor: a terminal
//! is replaced, anything else (a pipe, a file) is passed on as it is.
use std::io::{IsTerminal, Write};
use std::os::fd::{AsFd, OwnedFd};

use anyhow::Result;

use crate::sys::{self, term, RawMode};

/// Size of a pty nobody measured (no terminal to copy it from).
const DEFAULT_SIZE: (u16, u16) = (24, 80);

/// Which of the caller's descriptors a pod pty stands in for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsoleSlots {
    /// `[stdin, stdout, stderr]`: true where the caller has a terminal the pty replaces.
    pub stdio: [bool; 3],
}

impl ConsoleSlots {
    /// The caller's terminals among 0-2; stdin only counts when input is forwarded.
    pub fn detect(forward_input: bool) -> ConsoleSlots {
        ConsoleSlots {
            stdio: [
                forward_input && std::io::stdin().is_terminal(),
                std::io::stdout().is_terminal(),
                std::io::stderr().is_terminal(),
            ],
        }
    }

    pub fn wanted(&self) -> bool {
        self.stdio.contains(&true)
    }

    /// The caller's terminal size, for the new pty.
    pub fn size(&self) -> (u16, u16) {
        term::stdio()
            .into_iter()
            .zip(self.stdio)
            .filter(|(_, tty)| *tty)
            .find_map(|(fd, _)| term::window_size(fd))
            .unwrap_or(DEFAULT_SIZE)
    }
}

/// A running proxy between the caller's terminal and a pod pty's master.
pub struct Console {
    master: OwnedFd,
    slots: ConsoleSlots,
    /// Read from the caller but not yet written to the master.
    pending: Vec<u8>,
    input_open: bool,
    master_open: bool,
    _raw: Option<RawMode<'static>>,
}

impl Console {
    /// Starts proxying `master`. With a forwarded terminal on stdin, that terminal goes into
    /// raw mode until the console is dropped.
    pub fn new(master: OwnedFd, slots: ConsoleSlots) -> Result<Console> {
        term::set_nonblocking(&master)?;
        let raw = if slots.stdio[0] {
            Some(RawMode::enable(term::stdio()[0])?)
        } else {
            None
        };
        Ok(Console {
            master,
            slots,
            pending: Vec::new(),
            input_open: slots.stdio[0],
            master_open: true,
            _raw: raw,
        })
    }

    /// What to poll: the caller's stdin (while nothing waits to be written) and the master.
    pub fn poll_fds(&self) -> Vec<libc::pollfd> {
        let mut fds = Vec::new();
        if self.input_open && self.pending.is_empty() {
            fds.push(sys::pollfd(term::stdio()[0], libc::POLLIN));
        }
        if self.master_open {
            let mut events = libc::POLLIN;
            if !self.pending.is_empty() {
                events |= libc::POLLOUT;
            }
            fds.push(sys::pollfd(self.master.as_fd(), events));
        }
        fds
    }

    /// Moves data after `poll` answered for [`Console::poll_fds`].
    pub fn on_ready(&mut self, fds: &[libc::pollfd]) {
        for p in fds {
            if p.revents == 0 {
                continue;
            }
            if p.fd == libc::STDIN_FILENO && self.input_open {
                self.read_input();
            } else {
                self.flush_input();
                self.copy_output();
            }
        }
    }

    fn read_input(&mut self) {
        let mut buf = [0u8; 4096];
        match term::read(term::stdio()[0], &mut buf) {
            Ok(0) | Err(_) => self.input_open = false,
            Ok(n) => {
                self.pending.extend_from_slice(&buf[..n]);
                self.flush_input();
            }
        }
    }

    fn flush_input(&mut self) {
        while !self.pending.is_empty() && self.master_open {
            match term::write(self.master.as_fd(), &self.pending) {
                Ok(n) => {
                    self.pending.drain(..n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(_) => self.master_open = false,
            }
        }
    }

    /// Copies what the pod wrote to the caller's terminal, until the master has nothing more.
    fn copy_output(&mut self) {
        let mut buf = [0u8; 16384];
        while self.master_open {
            match term::read(self.master.as_fd(), &mut buf) {
                Ok(0) => self.master_open = false,
                Ok(n) => self.write_out(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                // EIO: every slave is closed, the pod's side is gone.
                Err(_) => self.master_open = false,
            }
        }
    }

    fn write_out(&self, data: &[u8]) {
        // The first of stdout and stderr that is a terminal shows the pty's output.
        let target = term::stdio()[if self.slots.stdio[1] { 1 } else { 2 }];
        // Nothing to do if the caller's terminal is gone.
        let _ = term::write_all(target, data);
    }

    /// The caller's terminal was resized: the pod's pty follows.
    pub fn resize(&self) {
        // Best effort: a pty that is gone has no size to set.
        let _ = term::set_window_size(self.master.as_fd(), self.slots.size());
    }

    /// Copies what is left after the pod's side ended.
    pub fn drain(&mut self) {
        self.copy_output();
        let _ = std::io::stdout().flush();
    }
}
