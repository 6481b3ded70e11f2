//! stage2-init: PID 1 of an rkt pod. Reads the plan stage1 wrote, starts every app chrooted in
//! its own mount namespace, reaps, forwards signals, records exit statuses and applies the
//! immutable pod's exit policy (docs/stage-contract.md, "Exit policy").
//!
//! Usage: `stage2-init <plan-file>` (stage1 passes `/rkt/run/init-plan`). Outside the pod, stage1
//! also runs it as the pod's waiter: `stage2-init --wait ...` (see [`waiter`]).

use std::ffi::OsString;
use std::io::Write;

/// One line on stderr, prefixed `stage2-init: `. Never panics, unlike `eprintln!`: a closed
/// stderr must not take PID 1 down.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::say(format_args!($($arg)*))
    };
}

mod contract;
mod enter;
mod plan;
mod pod;
mod status;
mod supervisor;
mod sys;
mod waiter;

fn say(message: std::fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr().lock(), "stage2-init: {message}");
}

fn main() {
    std::process::exit(run(std::env::args_os().skip(1).collect()));
}

fn run(args: Vec<OsString>) -> i32 {
    if args.first().is_some_and(|a| a == waiter::WAIT_FLAG) {
        return waiter::run(&args);
    }
    // First, before the plan (app environments) is in memory: other processes of our uid,
    // apps running as root without CAP_SYS_PTRACE included, must not reach our memory or
    // root through /proc/1 or ptrace.
    if let Err(err) = sys::set_not_dumpable() {
        say!("{err}");
        return contract::EXIT_SETUP_FAILURE;
    }
    let [path] = args.as_slice() else {
        say!(
            "usage: stage2-init <plan-file> (stage1 passes {})",
            contract::DEFAULT_PLAN_PATH
        );
        return contract::EXIT_SETUP_FAILURE;
    };
    let path = std::path::Path::new(path);
    let parsed = std::fs::read(path)
        .map_err(|err| format!("read: {}", sys::describe(&err)))
        .and_then(|bytes| plan::parse(&bytes).map_err(|err| err.to_string()));
    match parsed {
        Ok(plan) => pod::run(&plan),
        Err(what) => {
            say!("bad plan {}: {what}", path.display());
            contract::EXIT_SETUP_FAILURE
        }
    }
}
