//! `rkt run-prepared UUID`: run a pod made by `rkt prepare`.
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::cli::RunPreparedArgs;
use crate::globals::Globals;
use crate::output::Log;
use crate::pod::launch::{self, Launch};
use crate::pod::overlay::overlay_supported;
use crate::pod::{manifest, setup, PodState, Pods, StateDir};

pub fn run(globals: &Globals, args: &RunPreparedArgs, log: &Log) -> Result<i32> {
    let Some(uuid) = &args.uuid else {
        bail!("missing pod UUID: usage: rkt run-prepared UUID");
    };
    let mut pod = Pods::new(&globals.dir)
        .find(uuid)
        .context("problem retrieving pod")?;
    if pod.state() != PodState::Prepared {
        bail!("pod {:?} is not prepared", pod.uuid.to_string());
    }
    let manifest = pod.manifest().context("cannot read pod manifest")?;
    let options = args.launch();
    if options.interactive && manifest.apps.len() > 1 {
        bail!("interactive option only supports pods with one app");
    }
    if options.mds_register {
        bail!("--mds-register: the metadata service is not supported by this rkt yet");
    }
    if setup::uses_overlay(&pod.path()) && !overlay_supported(&globals.dir, log) {
        bail!("unable to run prepared overlay-enabled pod: overlay not supported");
    }
    let launch = Launch::new(&options, globals)?;
    // `status`/`list` probe the lock for an instant: retry briefly. A concurrent run-prepared
    // of the same pod keeps it and wins.
    let deadline = Instant::now() + Duration::from_secs(2);
    while !pod.lock(false)? {
        if Instant::now() >= deadline {
            bail!(
                "pod {:?} is being run by another process",
                pod.uuid.to_string()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    pod.refresh_state()?;
    if pod.state_dir() != StateDir::Prepared {
        bail!("pod {:?} is not prepared", pod.uuid.to_string());
    }
    let store = globals.open_store()?;
    manifest::check_volumes(&store, &manifest)?;
    launch::launch(&mut pod, &store, &manifest, &launch, log)
}
