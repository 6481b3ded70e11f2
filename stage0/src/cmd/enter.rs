//! `rkt enter [--app=NAME] UUID [CMD [ARGS...]]`: exec the stage1 enter entrypoint.
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::cli::EnterArgs;
use crate::globals::Globals;
use crate::output::Log;
use crate::pod::{PodState, Pods};
use crate::stage1::Stage1;

pub fn run(globals: &Globals, args: &EnterArgs, log: &Log) -> Result<i32> {
    let Some(uuid) = &args.uuid else {
        bail!("missing pod UUID: usage: rkt enter [--app=APPNAME] UUID [CMD [ARGS ...]]");
    };
    let pod = Pods::new(&globals.dir)
        .find(uuid)
        .context("problem retrieving pod")?;
    if pod.state() != PodState::Running {
        bail!("pod {:?} isn't currently running", pod.uuid.to_string());
    }
    let manifest = pod.manifest().context("cannot read pod manifest")?;
    let app = match &args.app {
        Some(a) if !aci::validate::is_ac_name(a) => {
            bail!("invalid app name {a:?}: app names are lower-case letters, digits and dashes")
        }
        Some(a) => a.clone(),
        None => match manifest.apps.len() {
            0 => bail!("pod contains zero apps"),
            1 => manifest.apps[0].name.clone(),
            _ => {
                log.print("pod contains multiple apps:");
                for a in &manifest.apps {
                    log.print(format!("\t{}", a.name));
                }
                bail!("unable to determine app name: specify app using \"rkt enter --app= ...\"");
            }
        },
    };
    // stage1 writes `pid` just after the pod starts; wait for it briefly.
    let deadline = Instant::now() + Duration::from_secs(10);
    let pid = loop {
        if let Some(pid) = pod.pid() {
            break pid;
        }
        if Instant::now() >= deadline {
            bail!(
                "unable to determine the pid for pod {:?}",
                pod.uuid.to_string()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut command = args.command.clone();
    if command.is_empty() {
        log.print("no command specified, assuming \"/bin/bash\"");
        command = vec!["/bin/bash".into()];
    }
    let dir = pod.path();
    let store = globals.open_store()?;
    let stage1 = Stage1::of_pod(&store, &dir)?;
    Err(stage1
        .exec_enter(&store, &dir, pid, &app, &command)
        .context("enter failed"))
}
