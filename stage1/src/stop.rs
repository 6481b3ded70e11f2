//! The `stop` entrypoint: SIGTERM to the pod's PID 1 (an orderly stop: stage2-init stops the
//! apps), or SIGKILL with `--force`, which ends the whole PID namespace.
use anyhow::{Context, Result};

use crate::args::PodArgs;
use crate::contract::PID_FILE;
use crate::sys;

pub fn stop(args: &PodArgs) -> Result<i32> {
    let content = std::fs::read_to_string(PID_FILE)
        .context("cannot read the pod's pid file: is it running?")?;
    let pid: i32 = content
        .trim()
        .parse()
        .with_context(|| format!("invalid pid file content {content:?}"))?;
    let sig = if args.force {
        libc::SIGKILL
    } else {
        libc::SIGTERM
    };
    match sys::kill(pid, sig) {
        Ok(()) => Ok(0),
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(0),
        Err(e) => Err(e).with_context(|| format!("cannot signal pod PID 1 ({pid})")),
    }
}
