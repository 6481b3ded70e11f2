//! The waiter (docs/stage-contract.md, "The waiter"): what stage1 becomes, outside the pod,
//! once the pod has run a while. Executed from the same file as the pod's PID 1, so that the
//! two share their code pages, it keeps what stage1 kept: the pod lock (an inherited
//! descriptor), the forwarding of signals to PID 1, and PID 1's exit status, which it hands to
//! stage1's cleanup by executing it.
//!
//! Usage: `stage2-init --wait <pid1> <fd> -- <cleanup argv...>`; the cleanup gets
//! `--exit-status=<n>` appended, with n = PID 1's exit code, or 128 + the signal that killed it.
use std::ffi::OsString;

use crate::contract::EXIT_SETUP_FAILURE;
use crate::supervisor::{Pid, WaitStatus};
use crate::sys;

/// The first argument that selects the waiter.
pub const WAIT_FLAG: &str = "--wait";

struct Args {
    pid1: Pid,
    cleanup_fd: libc::c_int,
    cleanup: Vec<OsString>,
}

fn parse(args: &[OsString]) -> Option<Args> {
    let number = |s: &OsString| s.to_str()?.parse::<i32>().ok();
    match args {
        [flag, pid1, fd, dashes, cleanup @ ..]
            if flag == WAIT_FLAG && dashes == "--" && !cleanup.is_empty() =>
        {
            Some(Args {
                pid1: number(pid1).filter(|p| *p > 1)?,
                cleanup_fd: number(fd).filter(|f| *f > 2)?,
                cleanup: cleanup.to_vec(),
            })
        }
        _ => None,
    }
}

/// The exit code stage1 reports for PID 1's end.
fn exit_code(status: WaitStatus) -> i32 {
    match status {
        WaitStatus::Exited(code) => code,
        WaitStatus::Signaled(signal) => 128 + signal,
    }
}

pub fn run(args: &[OsString]) -> i32 {
    let Some(args) = parse(args) else {
        say!("usage: stage2-init {WAIT_FLAG} <pid1> <fd> -- <cleanup argv...> (stage1 runs it)");
        return EXIT_SETUP_FAILURE;
    };
    sys::set_name(c"stage1-waiter");
    let status = match wait_for(args.pid1) {
        Ok(status) => status,
        Err(err) => {
            say!("waiting for the pod's PID 1: {err}");
            return EXIT_SETUP_FAILURE;
        }
    };
    let code = exit_code(status);
    let mut argv = args.cleanup;
    argv.push(format!("--exit-status={code}").into());
    let err = sys::exec_fd(args.cleanup_fd, &argv);
    say!("cannot run stage1's cleanup after the pod's exit: {err} (rkt gc does it later)");
    code
}

/// Forwards every signal but SIGCHLD to `pid1` until it ends.
fn wait_for(pid1: Pid) -> Result<WaitStatus, sys::Error> {
    use std::os::fd::AsFd;
    let signals = sys::inherited_signals()?;
    loop {
        if let Some(status) = sys::try_wait(pid1)? {
            return Ok(status);
        }
        let signal = sys::next_signal(signals.as_fd())?;
        if signal != libc::SIGCHLD {
            sys::send_signal(pid1, signal)?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn takes_what_stage1_passes() {
        let a = parse(&args(&[
            "--wait",
            "42",
            "5",
            "--",
            "cleanup",
            "--after-exit",
            "{}",
        ]))
        .unwrap();
        assert_eq!((a.pid1, a.cleanup_fd), (42, 5));
        assert_eq!(a.cleanup, args(&["cleanup", "--after-exit", "{}"]));
    }

    #[test]
    fn refuses_anything_else() {
        for bad in [
            &["--wait", "42", "5", "--"][..],
            &["--wait", "1", "5", "--", "cleanup"],
            &["--wait", "42", "1", "--", "cleanup"],
            &["--wait", "x", "5", "--", "cleanup"],
            &["--wait", "42", "5", "cleanup"],
            &["/rkt/run/init-plan"],
        ] {
            assert!(parse(&args(bad)).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn a_killed_pid1_reads_as_128_plus_the_signal() {
        assert_eq!(exit_code(WaitStatus::Exited(3)), 3);
        assert_eq!(exit_code(WaitStatus::Signaled(libc::SIGKILL)), 137);
    }
}
