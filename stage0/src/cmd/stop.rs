//! `rkt stop [--force] UUID...|--uuid-file`: run the stage1 stop entrypoint for each pod.
use anyhow::Result;

use crate::cli::StopArgs;
use crate::globals::Globals;
use crate::output::{Log, EXIT_FAILURE};
use crate::pod::{Pod, PodState, Pods};
use crate::stage1::Stage1;

pub fn run(globals: &Globals, args: &StopArgs, log: &Log) -> Result<i32> {
    let pods = Pods::new(&globals.dir);
    let mut targets: Vec<String> = args.uuids.clone();
    if let Some(file) = &args.uuid_file {
        match std::fs::read_to_string(file) {
            Ok(s) => targets.push(s.trim().to_string()),
            Err(e) => {
                log.print(format!("unable to resolve UUID from file: {e}"));
                return Ok(1);
            }
        }
    }
    if targets.is_empty() {
        anyhow::bail!("give at least one pod UUID or --uuid-file=FILE");
    }
    let mut errors = 0;
    for uuid in &targets {
        let pod = match pods.find(uuid) {
            Ok(p) => p,
            Err(e) => {
                log.print(format!("cannot get pod: {e}"));
                errors += 1;
                continue;
            }
        };
        match pod.state() {
            PodState::Running => {}
            s if s.is_exited() || matches!(s, PodState::Garbage | PodState::Deleting) => {
                println!("pod {:?} is already stopped", pod.uuid.to_string());
                continue;
            }
            _ => {
                log.print(format!("pod {:?} is not running", pod.uuid.to_string()));
                errors += 1;
                continue;
            }
        }
        match stop_pod(globals, &pod, args.force.unwrap_or(false)) {
            Ok(()) => println!("{:?}", pod.uuid.to_string()),
            Err(e) => {
                log.print(format!("error stopping {:?}: {e:#}", pod.uuid.to_string()));
                errors += 1;
            }
        }
    }
    if errors > 0 {
        log.print(format!("failed to stop {errors} pod(s)"));
        return Ok(EXIT_FAILURE);
    }
    Ok(0)
}

/// Runs the stage1 stop entrypoint of the pod.
fn stop_pod(globals: &Globals, pod: &Pod, force: bool) -> Result<()> {
    let dir = pod.path();
    let store = globals.open_store()?;
    Stage1::of_pod(&store, &dir)?.stop(&store, &dir, force, &pod.uuid.to_string())
}
