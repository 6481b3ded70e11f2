//! The console op, run by the pod's PID 1 after the pod's devpts is mounted: a new pty whose
//! slave becomes some of PID 1's standard descriptors and the pod's `/dev/console`, and whose
//! master goes to stage1, which proxies it to the caller's terminal. The caller's terminal
//! itself never enters the pod: an app could otherwise type into the operator's shell with
//! TIOCSTI (as with `runc -t` and systemd-nspawn).
use super::pod::ConsoleOp;
use super::report::send_console;
use super::resolve::ProcFdPath;
use super::{errno, MS_BIND};

/// # Safety
/// Async-signal-safe: raw system calls on data prepared before `fork`.
pub(super) unsafe fn open_console(c: &ConsoleOp, report: libc::c_int) -> libc::c_int {
    let master = libc::open(
        c.ptmx.as_ptr(),
        libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
    );
    if master < 0 {
        return -1;
    }
    let rc = with_master(c, master, report);
    let err = errno();
    libc::close(master);
    *libc::__errno_location() = err;
    rc
}

unsafe fn with_master(c: &ConsoleOp, master: libc::c_int, report: libc::c_int) -> libc::c_int {
    let unlock: libc::c_int = 0;
    let size = libc::winsize {
        ws_row: c.rows,
        ws_col: c.cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    if libc::ioctl(master, libc::TIOCSPTLCK, &unlock) < 0
        || libc::ioctl(master, libc::TIOCSWINSZ, &size) < 0
    {
        return -1;
    }
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    let slave = libc::ioctl(master, libc::TIOCGPTPEER, flags);
    if slave < 0 {
        return -1;
    }
    let rc = with_slave(c, master, slave, report);
    let err = errno();
    libc::close(slave);
    *libc::__errno_location() = err;
    rc
}

unsafe fn with_slave(
    c: &ConsoleOp,
    master: libc::c_int,
    slave: libc::c_int,
    report: libc::c_int,
) -> libc::c_int {
    if c.controlling_tty && libc::ioctl(slave, libc::TIOCSCTTY, 0) < 0 {
        return -1;
    }
    for (fd, wanted) in (0..).zip(c.stdio) {
        if wanted && libc::dup2(slave, fd) < 0 {
            return -1;
        }
    }
    let mut source = ProcFdPath::new();
    source.set(slave);
    let bound = libc::mount(
        source.as_ptr(),
        c.console.as_ptr(),
        std::ptr::null(),
        MS_BIND,
        std::ptr::null(),
    );
    if bound < 0 {
        return -1;
    }
    send_console(report, master)
}
