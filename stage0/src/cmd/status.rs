//! `rkt status [--wait[=DURATION]] [--wait-ready[=DURATION]] [--format] UUID|--uuid-file`.
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::cli::StatusArgs;
use crate::contract::SUPERVISOR_STATUS;
use crate::globals::Globals;
use crate::output::Log;
use crate::pod::info::v1_pod;
use crate::pod::{Pod, PodState, Pods};
use crate::{json, timefmt};

const POLL: Duration = Duration::from_millis(100);

/// `--wait` values: a bool, or a duration (0 = no wait, negative = forever).
fn wait_limit(value: Option<&str>) -> Result<Option<Option<Duration>>> {
    let Some(v) = value else { return Ok(None) };
    match aci::go::parse_bool(v) {
        _ if v.is_empty() => Ok(Some(None)),
        Some(true) => Ok(Some(None)),
        Some(false) => Ok(None),
        None if v.starts_with('-') => Ok(Some(None)),
        None => {
            let dur = timefmt::parse_duration(v)?;
            Ok(if dur.is_zero() { None } else { Some(Some(dur)) })
        }
    }
}

/// Resolves the pod from a UUID argument or `--uuid-file` (exactly one of them).
pub fn pod_from_args(
    globals: &Globals,
    uuid: Option<&str>,
    uuid_file: Option<&std::path::Path>,
) -> Result<Pod> {
    let pods = Pods::new(&globals.dir);
    match (uuid, uuid_file) {
        (Some(u), None) => pods.find(u).context("problem retrieving pod"),
        (None, Some(f)) => pods.find_from_file(f).context("problem retrieving pod"),
        _ => bail!("give either a pod UUID or --uuid-file=FILE"),
    }
}

pub fn run(globals: &Globals, args: &StatusArgs, log: &Log) -> Result<i32> {
    let format = json::Format::parse(args.format.as_deref())?;
    let wait = wait_limit(args.wait.as_deref()).context("invalid --wait")?;
    let wait_ready = wait_limit(args.wait_ready.as_deref()).context("invalid --wait-ready")?;
    if let (None, Some(f)) = (&args.uuid, &args.uuid_file) {
        if let Err(e) = std::fs::read_to_string(f) {
            log.print(format!("unable to resolve UUID from file: {e}"));
            return Ok(1);
        }
    }
    let mut pod = pod_from_args(globals, args.uuid.as_deref(), args.uuid_file.as_deref())?;
    if let Some(limit) = wait_ready {
        let deadline = limit.map(|d| Instant::now() + d);
        loop {
            let ready = pod
                .read_stage1_link(SUPERVISOR_STATUS)
                .is_some_and(|t| t.as_os_str() == "ready");
            if ready {
                break;
            }
            pod.refresh_state()?;
            if finished(pod.state()) {
                bail!("error waiting for pod readiness: the pod exited before it was ready");
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                bail!("error waiting for pod readiness: context deadline exceeded");
            }
            std::thread::sleep(POLL);
        }
    }
    if let Some(limit) = wait {
        let deadline = limit.map(|d| Instant::now() + d);
        loop {
            pod.refresh_state()?;
            if finished(pod.state()) {
                break;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                bail!("error waiting for pod to finish: context deadline exceeded");
            }
            std::thread::sleep(POLL);
        }
    }
    if format != json::Format::Tabbed {
        if pod.created().is_none() {
            bail!("unable to print status: error converting pod: invalid creation time");
        }
        println!("{}", json::render_value(&v1_pod(&pod), format));
        return Ok(0);
    }
    print!("{}", render(&pod));
    Ok(0)
}

fn finished(state: PodState) -> bool {
    state.is_exited()
        || matches!(
            state,
            PodState::AbortedPrepare | PodState::Garbage | PodState::Deleting
        )
}

/// rkt's `key=value` status lines.
pub fn render(pod: &Pod) -> String {
    let state = pod.state();
    let mut out = format!("state={state}\n");
    out.push_str(&format!(
        "created={}\n",
        pod.created()
            .map(timefmt::go_time)
            .unwrap_or_else(|| "0001-01-01 00:00:00 +0000 UTC".into())
    ));
    if let Some(started) = pod.started() {
        out.push_str(&format!("started={}\n", timefmt::go_time(started)));
    }
    if matches!(state, PodState::Running | PodState::Exited) {
        out.push_str(&format!(
            "networks={}\n",
            crate::pod::info::networks_text(&pod.networks())
        ));
    }
    if !matches!(
        state,
        PodState::Running
            | PodState::Deleting
            | PodState::ExitedDeleting
            | PodState::Exited
            | PodState::ExitedGarbage
    ) {
        return out;
    }
    if let Some(pid) = pod.pid() {
        out.push_str(&format!("pid={pid}\n"));
    }
    out.push_str(&format!(
        "exited={}\n",
        matches!(state, PodState::Exited | PodState::ExitedGarbage)
    ));
    if state != PodState::Running {
        if let Some(m) = pod.manifest() {
            for app in &m.apps {
                if let Some(code) = pod.app_exit_code(&app.name) {
                    out.push_str(&format!("app-{}={code}\n", app.name));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_values() {
        assert_eq!(wait_limit(None).unwrap(), None);
        assert_eq!(wait_limit(Some("true")).unwrap(), Some(None));
        assert_eq!(wait_limit(Some("false")).unwrap(), None);
        assert_eq!(wait_limit(Some("0s")).unwrap(), None);
        assert_eq!(
            wait_limit(Some("10s")).unwrap(),
            Some(Some(Duration::from_secs(10)))
        );
        assert!(wait_limit(Some("soon")).is_err());
    }
}
