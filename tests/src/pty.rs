//! An operator's terminal for the tests: a pty whose slave is the controlling terminal of the
//! `rkt` process under test, and whose master the test reads (what the operator sees) and
//! writes (what the operator types). Whatever a pod pushes into the operator's terminal with
//! TIOCSTI ends up in the slave's input queue, where [`OperatorTty::typed_into_shell`] finds it.
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

pub struct OperatorTty {
    master: OwnedFd,
    slave: OwnedFd,
    output: Receiver<Vec<u8>>,
    seen: Vec<u8>,
}

fn winsize(rows: u16, cols: u16) -> libc::winsize {
    libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    }
}

fn check(rc: libc::c_int, what: &str) {
    assert!(rc >= 0, "{what}: {}", std::io::Error::last_os_error());
}

impl OperatorTty {
    /// A new pty of `rows` x `cols`.
    pub fn new(rows: u16, cols: u16) -> OperatorTty {
        let (mut master, mut slave) = (-1, -1);
        let size = winsize(rows, cols);
        // SAFETY: openpty fills two ints; name and termios are not wanted; `size` is live.
        check(
            unsafe {
                libc::openpty(
                    &mut master,
                    &mut slave,
                    std::ptr::null_mut(),
                    std::ptr::null(),
                    &size,
                )
            },
            "openpty",
        );
        // SAFETY: openpty just returned both descriptors, owned by nobody else.
        let (master, slave) =
            unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        // The operator's screen: everything written to the master's other side, collected by
        // a thread so the pod never blocks on a full pty buffer.
        let mut reader = File::from(master.try_clone().expect("dup master"));
        let (tx, output) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        OperatorTty {
            master,
            slave,
            output,
            seen: Vec::new(),
        }
    }

    /// Starts `cmd` in a new session whose controlling terminal is this pty, on fds 0-2.
    pub fn spawn(&self, mut cmd: Command) -> Child {
        let fd = self.slave.as_raw_fd();
        let stdio = || Stdio::from(self.slave.try_clone().expect("dup slave"));
        cmd.stdin(stdio()).stdout(stdio()).stderr(stdio());
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setsid() < 0 || libc::ioctl(fd, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        cmd.spawn().expect("spawn under the operator's terminal")
    }

    /// Types `text` as the operator would.
    pub fn type_in(&self, text: &str) {
        // SAFETY: writes a live buffer to our master.
        let n = unsafe { libc::write(self.master.as_raw_fd(), text.as_ptr().cast(), text.len()) };
        assert_eq!(n, text.len() as isize, "typing into the pty");
    }

    /// Resizes the terminal (the kernel sends SIGWINCH to its foreground process group).
    pub fn resize(&self, rows: u16, cols: u16) {
        let size = winsize(rows, cols);
        // SAFETY: TIOCSWINSZ reads a live winsize.
        check(
            unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &size) },
            "TIOCSWINSZ",
        );
    }

    /// Waits until the screen shows `needle` (true) or `timeout` passes (false).
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.screen().contains(needle) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            if let Ok(chunk) = self
                .output
                .recv_timeout(left.min(Duration::from_millis(100)))
            {
                self.seen.extend(chunk);
            }
        }
    }

    /// Everything the operator's screen showed so far.
    pub fn screen(&mut self) -> String {
        while let Ok(chunk) = self.output.try_recv() {
            self.seen.extend(chunk);
        }
        String::from_utf8_lossy(&self.seen).into_owned()
    }

    /// What sits in the terminal's input queue, unread: what the operator's shell would read
    /// next, for example bytes a pod pushed with TIOCSTI.
    pub fn typed_into_shell(&self) -> String {
        let fd = self.slave.as_raw_fd();
        let mut pending: libc::c_int = 0;
        // SAFETY: FIONREAD writes an int, a live local.
        check(
            unsafe { libc::ioctl(fd, libc::FIONREAD, &mut pending) },
            "FIONREAD",
        );
        if pending == 0 {
            return String::new();
        }
        let mut buf = vec![0u8; pending as usize];
        // SAFETY: reads at most `pending` bytes into a buffer of that size.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        buf.truncate(n.max(0) as usize);
        String::from_utf8_lossy(&buf).into_owned()
    }
}
