//! `rkt gc [--grace-period=30m] [--expire-prepared=24h] [--mark-only]`.
use std::time::Duration;

use anyhow::{Context, Result};

use crate::cli::GcArgs;
use crate::globals::Globals;
use crate::output::{Log, EXIT_FAILURE};
use crate::pod::gc::Collector;
use crate::pod::{Pod, PodState, Pods, StateDir};
use crate::timefmt;

pub fn run(globals: &Globals, args: &GcArgs, log: &Log) -> Result<i32> {
    let grace = timefmt::parse_duration(&args.grace_period).context("invalid --grace-period")?;
    let expire =
        timefmt::parse_duration(&args.expire_prepared).context("invalid --expire-prepared")?;
    let pods = Pods::new(&globals.dir);
    pods.ensure_dirs()?;
    let mut failed = false;

    // Mark: exited pods and aborted prepares become garbage.
    for mut pod in pods.all()? {
        let uuid = pod.uuid.to_string();
        let step = match pod.state() {
            PodState::Exited => {
                log.print(format!("moving pod {uuid:?} to garbage"));
                pod.move_to(StateDir::ExitedGarbage)
            }
            PodState::AbortedPrepare => {
                log.print(format!("moving failed prepare {uuid:?} to garbage"));
                pod.move_to(StateDir::Garbage)
            }
            _ => Ok(()),
        };
        match step {
            Ok(()) => {}
            // Another gc (or rm) got there first: the pod is on its way out anyway.
            Err(e) if moved_by_someone_else(&e) => {
                log.debug(format!("pod {uuid:?} was already moved: {e:#}"))
            }
            Err(e) => {
                log.print(format!("rename error: {e:#}"));
                failed = true;
            }
        }
    }
    if args.mark_only.unwrap_or(false) {
        return Ok(if failed { EXIT_FAILURE } else { 0 });
    }

    let now = timefmt::now_nanos();
    // Read after marking: the table names mounts by pod, wherever the pod now is.
    let mut collector = Collector::with_mount_table(&pods)?;
    for mut pod in pods.all()? {
        let uuid = pod.uuid.to_string();
        match pod.state() {
            PodState::Prepared if changed_before(&pod, now, expire) => {
                log.print(format!("moving expired prepared pod {uuid:?} to garbage"));
                match pod.move_to(StateDir::Garbage) {
                    Ok(()) => {}
                    Err(e) if moved_by_someone_else(&e) => continue,
                    Err(e) => {
                        log.print(format!("rename error: {e:#}"));
                        failed = true;
                        continue;
                    }
                }
                failed |= !sweep(&mut pod, &mut collector, globals, log);
            }
            PodState::ExitedGarbage => {
                if changed_before(&pod, now, grace) {
                    failed |= !sweep(&mut pod, &mut collector, globals, log);
                } else {
                    log.print(format!(
                        "pod {uuid:?} not removed: still within grace period ({})",
                        go_duration(grace)
                    ));
                }
            }
            PodState::Garbage => failed |= !sweep(&mut pod, &mut collector, globals, log),
            _ => {}
        }
    }
    // What killed fetches and image removals left in the store goes too (rkt only did this
    // on the next import).
    if let Err(e) = clean_store(globals) {
        log.print(format!("cannot clean the store's temporary entries: {e:#}"));
        failed = true;
    }
    Ok(if failed { EXIT_FAILURE } else { 0 })
}

/// Removes abandoned work directories under `cas/tmp`: only those no live process holds.
fn clean_store(globals: &Globals) -> Result<()> {
    if !globals.dir.join(store::CAS_DIR).is_dir() {
        return Ok(());
    }
    let store = globals.open_store()?;
    let _lock = store.lock_shared()?;
    store.clean_stale_work()?;
    Ok(())
}

/// Whether a failed move means the pod was no longer where this gc saw it: another process
/// moved or deleted it since it was listed, which rkt did not count as an error either.
fn moved_by_someone_else(e: &anyhow::Error) -> bool {
    e.chain()
        .filter_map(|c| c.downcast_ref::<std::io::Error>())
        .any(|io| io.kind() == std::io::ErrorKind::NotFound)
}

/// Deletes one marked pod; skipped silently when someone else holds its lock or already
/// deleted it.
fn sweep(pod: &mut Pod, collector: &mut Collector, globals: &Globals, log: &Log) -> bool {
    match lock_unless_held(pod) {
        Ok(true) => {}
        Ok(false) => return true,
        Err(e) => {
            log.error(&e);
            return false;
        }
    }
    // Locked, but perhaps only after another gc had deleted the directory or moved it on.
    if pod.is_gone() {
        return true;
    }
    println!("Garbage collecting pod {:?}", pod.uuid.to_string());
    match collector.delete(pod, globals, log) {
        Ok(()) => true,
        Err(e) => {
            log.error(&e);
            false
        }
    }
}

/// Takes the pod's lock unless another process holds it. Listing pods probes their locks
/// for an instant (a shared `flock`): a lock found busy is tried again for a moment, so that
/// a concurrent `rkt list` or `rkt gc` listing does not make this gc skip the pod for good.
fn lock_unless_held(pod: &mut Pod) -> Result<bool> {
    for _ in 0..20 {
        if pod.lock(false)? {
            return Ok(true);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(false)
}

/// Whether the pod directory's ctime (set by the marking rename) is older than `age`.
fn changed_before(pod: &Pod, now: i64, age: Duration) -> bool {
    use std::os::unix::fs::MetadataExt;
    // No grace: whatever is marked goes, even a pod that another gc marked after this one
    // read the clock (its ctime may then be later than `now`).
    if age.is_zero() {
        return true;
    }
    let Ok(meta) = std::fs::metadata(pod.path()) else {
        return false;
    };
    let ctime = meta.ctime() * 1_000_000_000 + meta.ctime_nsec();
    ctime + age.as_nanos() as i64 <= now
}

/// Go's `time.Duration.String()` for whole-second durations (`30m0s`, `24h0m0s`, `0s`).
fn go_duration(d: Duration) -> String {
    let total = d.as_secs();
    if total == 0 && d.subsec_nanos() == 0 {
        return "0s".into();
    }
    let (h, m, s) = (total / 3600, (total % 3600) / 60, total % 60);
    let secs = if d.subsec_nanos() == 0 {
        format!("{s}s")
    } else {
        let frac = format!("{:.9}", d.subsec_nanos() as f64 / 1e9);
        format!("{s}{}s", frac.trim_start_matches('0').trim_end_matches('0'))
    };
    match (h, m) {
        (0, 0) => secs,
        (0, m) => format!("{m}m{secs}"),
        (h, m) => format!("{h}h{m}m{secs}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_like_go() {
        assert_eq!(go_duration(Duration::from_secs(1800)), "30m0s");
        assert_eq!(go_duration(Duration::from_secs(86400)), "24h0m0s");
        assert_eq!(go_duration(Duration::ZERO), "0s");
        assert_eq!(go_duration(Duration::from_secs(5)), "5s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
    }
}
