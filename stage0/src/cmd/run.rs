//! `rkt run` and `rkt prepare`: resolve the images, create and prepare the pod, then (run)
//! start it (docs/cli.md, "Checks before anything exists").
use anyhow::{Context, Result};
use store::{Store, TreeCheck};

use crate::cli::requests::{PodRequest, RunRequest};
use crate::globals::Globals;
use crate::image::{Fetcher, PullPolicy};
use crate::output::Log;
use crate::pod::launch::{self, Launch};
use crate::pod::overlay::overlay_supported;
use crate::pod::prepare::{prepare, PrepareOptions};
use crate::pod::uuid_file::UuidFile;
use crate::pod::{manifest, Pod, Pods, StateDir};
use crate::stage1;

pub fn run(globals: &Globals, req: &RunRequest, log: &Log) -> Result<i32> {
    req.validate(false)?;
    // Checked before anything exists, as every other mistake in the flags.
    let launch = Launch::new(&req.launch, globals)?;
    // Opened (and refused if not a regular file) before the pod exists; written right after,
    // before the pod runs, so that a failed run can still be removed by UUID, as in rkt.
    let uuid_file = req
        .uuid_file_save
        .as_deref()
        .map(|path| UuidFile::open(path).context("error saving pod UUID to file"))
        .transpose()?;
    let (mut pod, store, pod_manifest) = make_pod(globals, &req.pod, log, true, |pod| {
        uuid_file
            .map(|file| file.write(&pod.uuid.to_string()))
            .transpose()
            .map(|_| ())
            .context("error saving pod UUID to file")
    })?;
    launch::launch(&mut pod, &store, &pod_manifest, &launch, log)
}

pub fn prepare_pod(globals: &Globals, req: &RunRequest, log: &Log) -> Result<i32> {
    req.validate(true)?;
    let (mut pod, _, _) = make_pod(globals, &req.pod, log, false, |_| Ok(()))?;
    pod.move_to(StateDir::Prepared)
        .context("error transitioning to prepared")?;
    pod.unlock()?;
    println!("{}", pod.uuid);
    Ok(0)
}

/// Resolves stage1 and the images, generates (or loads) the pod manifest, then creates and
/// prepares the pod; `created` runs as soon as the pod directory exists. A pod about to run
/// has its host volume sources checked first (a prepared one may get them later).
fn make_pod(
    globals: &Globals,
    req: &PodRequest,
    log: &Log,
    running: bool,
    created: impl FnOnce(&Pod) -> Result<()>,
) -> Result<(Pod, Store, aci::schema::PodManifest)> {
    let policy = req.pull.resolve(PullPolicy::New)?;
    let store = globals.open_store()?;
    let fetcher = Fetcher {
        store: &store,
        globals,
        policy,
    };
    let stage1_key = stage1::resolve(&fetcher, &req.stage1.source())?;
    let pod_manifest = match &req.pod_manifest {
        Some(path) => manifest::load_pod_manifest(&store, path, globals)?,
        None => manifest::from_request(req, &fetcher)?,
    };
    // Everything stage1 would refuse is refused now, before any pod directory exists.
    pod_manifest.validate().context("invalid pod manifest")?;
    if running {
        manifest::check_volumes(&store, &pod_manifest)?;
    }

    let pods = Pods::new(&globals.dir);
    let pod = pods.create().context("error creating new pod")?;
    created(&pod)?;
    // Linux cannot id-map an overlay mount: a pod in a user namespace gets copies of its
    // images, which stage1 then mounts id-mapped (docs/stage-contract.md, "User namespaces").
    let overlay = !req.no_overlay && !req.private_users && overlay_supported(&globals.dir, log);
    let opts = PrepareOptions {
        stage1: &stage1_key,
        manifest: &pod_manifest,
        overlay,
        // A quick check keeps start-up independent of image size; `rkt image verify`
        // walks whole trees.
        check: if globals.insecure.skip_ondisk() {
            TreeCheck::None
        } else {
            TreeCheck::Quick
        },
        private_users: req.private_users,
    };
    log.debug("Writing pod manifest");
    // On failure the pod stays in prepare/, unlocked: an aborted prepare that gc collects.
    prepare(&pod.path(), &store, &opts).context("error setting up stage0")?;
    Ok((pod, store, pod_manifest))
}
