//! `rkt rm UUID...|--uuid-file`: delete exited, aborted or prepared pods.
use anyhow::Result;

use crate::cli::RmArgs;
use crate::globals::Globals;
use crate::output::{Log, EXIT_FAILURE};
use crate::pod::gc::Collector;
use crate::pod::{Pod, PodState, Pods, StateDir};

pub fn run(globals: &Globals, args: &RmArgs, log: &Log) -> Result<i32> {
    let pods = Pods::new(&globals.dir);
    let mut targets = args.uuids.clone();
    if let Some(file) = &args.uuid_file {
        match std::fs::read_to_string(file) {
            Ok(s) => targets.push(s.trim().to_string()),
            Err(e) => {
                log.print(format!("unable to resolve UUID from file: {e}"));
                return Ok(EXIT_FAILURE);
            }
        }
    }
    if targets.is_empty() {
        anyhow::bail!("give at least one pod UUID or --uuid-file=FILE");
    }
    let mut failed = false;
    for uuid in &targets {
        let mut pod = match pods.find(uuid) {
            Ok(p) => p,
            Err(e) => {
                log.print(format!("cannot get pod: {e}"));
                failed = true;
                continue;
            }
        };
        match remove(&mut pod, globals, log) {
            Ok(()) => println!("{:?}", pod.uuid.to_string()),
            Err(e) => {
                log.error(&e);
                failed = true;
            }
        }
    }
    if failed {
        log.print("failed to remove one or more pods");
        return Ok(EXIT_FAILURE);
    }
    Ok(0)
}

fn remove(pod: &mut Pod, globals: &Globals, log: &Log) -> Result<()> {
    let uuid = pod.uuid.to_string();
    match pod.state() {
        PodState::Running => anyhow::bail!("pod {uuid:?} is currently running"),
        PodState::Embryo | PodState::Preparing => {
            anyhow::bail!("pod {uuid:?} is currently being prepared")
        }
        PodState::Deleting | PodState::ExitedDeleting => {
            anyhow::bail!("pod {uuid:?} is currently being deleted")
        }
        PodState::AbortedPrepare => {
            log.print(format!("moving failed prepare {uuid:?} to garbage"));
            pod.move_to(StateDir::Garbage)?;
        }
        PodState::Prepared => {
            log.print(format!("moving expired prepared pod {uuid:?} to garbage"));
            pod.move_to(StateDir::Garbage)?;
        }
        PodState::Exited => pod.move_to(StateDir::ExitedGarbage)?,
        PodState::ExitedGarbage | PodState::Garbage => {}
    }
    if !pod.lock(false)? {
        anyhow::bail!("unable to acquire exclusive lock on pod {uuid:?}");
    }
    Collector::default().delete(pod, globals, log)
}
