//! The pod manifest `rkt run`/`prepare` generate (docs/cli.md, "The generated pod manifest"): a
//! full copy of every image's app section with the command-line overrides applied.
mod inputs;
mod isolators;

use std::collections::HashSet;

use aci::schema::{
    Annotation, App, EnvVar, GoSlice, ImageManifest, Mount, PodManifest, RuntimeApp, RuntimeImage,
    Volume,
};
use anyhow::{anyhow, bail, Result};
use store::ImageKey;

pub use inputs::{check_volumes, from_request, load_pod_manifest};
pub use isolators::{check_image_caps, CapsGrant};

use crate::cli::requests::{AppRequest, MountArg};
use crate::contract::ANN_MUTABLE;

/// One app of the pod: its command-line request and its resolved image.
pub struct ResolvedApp<'a> {
    pub request: &'a AppRequest,
    pub key: ImageKey,
    pub manifest: ImageManifest,
}

/// Pod-wide inputs of the generated manifest.
#[derive(Default)]
pub struct PodInputs {
    pub volumes: Vec<Volume>,
    pub mounts: Vec<MountArg>,
    pub env: EnvLayers,
    /// `--insecure-options=capabilities`: stage1 restricts no capabilities, so an image's own
    /// capability isolators need no operator consent.
    pub allow_image_caps: bool,
}

/// The pod-wide environment, lowest precedence first: `--inherit-env` (never overrides what
/// the app has), `--set-env-file`, then `--set-env` (both override, also the app's own
/// `--environment`, as rkt does).
#[derive(Default)]
pub struct EnvLayers {
    pub inherited: Vec<(String, String)>,
    pub from_file: Vec<(String, String)>,
    pub explicit: Vec<(String, String)>,
}

/// The app name rkt derives from an image name: its last path element as an AC Name.
pub fn default_app_name(image_name: &str) -> Result<String> {
    let last = image_name.rsplit('/').next().unwrap_or(image_name);
    aci::validate::sanitize_ac_name(last)
        .ok_or_else(|| anyhow!("cannot derive an app name from image {image_name:?}: use --name"))
}

pub fn generate(
    apps: &[ResolvedApp<'_>],
    pod: &PodInputs,
    caller: (u32, u32),
) -> Result<PodManifest> {
    let mut names = HashSet::new();
    let mut runtime_apps = Vec::new();
    for ra in apps {
        let req = ra.request;
        let name = match &req.name {
            Some(n) => {
                if !aci::validate::is_ac_name(n) {
                    bail!("invalid app name format {n:?}: app names are lower-case letters, digits and dashes");
                }
                n.clone()
            }
            None => default_app_name(&ra.manifest.name)?,
        };
        if !names.insert(name.clone()) {
            bail!("error: multiple apps with name {name}");
        }
        let app = app_section(ra, pod, caller)?;
        runtime_apps.push(RuntimeApp {
            name,
            image: RuntimeImage {
                name: Some(ra.manifest.name.clone()),
                id: ra.key.to_string(),
                labels: ra.manifest.labels.clone(),
            },
            app: Some(app),
            read_only_root_fs: match &req.readonly_rootfs {
                Some(v) => aci::go::parse_bool(v)
                    .ok_or_else(|| anyhow!("--readonly-rootfs must be set with a boolean"))?,
                None => false,
            },
            mounts: mounts(&req.mounts, &pod.mounts),
            annotations: key_values(&req.annotations, "annotation")?
                .into_iter()
                .map(|(name, value)| Annotation { name, value })
                .collect(),
        });
    }
    Ok(PodManifest {
        ac_version: crate::cmd::version::RKT_VERSION.to_string(),
        ac_kind: "PodManifest".into(),
        // Go's slices as rkt makes them: apps and annotations allocated, volumes appended to
        // a nil slice, isolators never set, ports from a flag list that starts allocated.
        apps: GoSlice::list(runtime_apps),
        volumes: GoSlice::appended(pod.volumes.clone()),
        isolators: GoSlice::nil(),
        annotations: GoSlice::list(vec![Annotation {
            name: ANN_MUTABLE.into(),
            value: "false".into(),
        }]),
        ports: GoSlice::list(Vec::new()),
        ..PodManifest::default()
    })
}

/// Per-app mounts, then pod-wide ones, keeping the first for each (cleaned) path. A relative
/// target is a path inside the app's root, as in rkt.
fn mounts(app: &[MountArg], pod: &[MountArg]) -> Vec<Mount> {
    let mut seen = HashSet::new();
    app.iter()
        .chain(pod)
        .filter(|m| seen.insert(aci::go::clean_path(&format!("/{}", m.target))))
        .map(|m| Mount {
            volume: m.volume.clone(),
            path: m.target.clone(),
            app_volume: None,
        })
        .collect()
}

fn key_values(values: &[String], flag: &str) -> Result<Vec<(String, String)>> {
    values
        .iter()
        .map(|v| {
            v.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| anyhow!("invalid format of --{flag} flag {v:?}"))
        })
        .collect()
}

fn set_env(env: &mut Vec<EnvVar>, name: &str, value: &str, override_existing: bool) {
    match env.iter_mut().find(|e| e.name == name) {
        Some(e) if override_existing => e.value = value.to_string(),
        Some(_) => {}
        None => env.push(EnvVar {
            name: name.to_string(),
            value: value.to_string(),
        }),
    }
}

fn app_section(ra: &ResolvedApp<'_>, pod: &PodInputs, caller: (u32, u32)) -> Result<App> {
    let req = ra.request;
    let mut app = match (&ra.manifest.app, &req.exec) {
        (Some(app), _) => app.clone(),
        (None, Some(_)) => App {
            user: caller.0.to_string(),
            group: caller.1.to_string(),
            ..App::default()
        },
        (None, None) => bail!(
            "error: image {} has no app section and --exec argument is not provided",
            ra.manifest.name
        ),
    };
    if let Some(exec) = &req.exec {
        app.exec = vec![exec.clone()];
    }
    app.exec.extend(req.args.iter().cloned());
    if let Some(dir) = &req.working_dir {
        app.working_directory = dir.clone();
    }
    if let Some(user) = &req.user {
        app.user = user.clone();
    }
    if let Some(group) = &req.group {
        app.group = group.clone();
    }
    if !req.supplementary_gids.is_empty() {
        app.supplementary_gids = Vec::new();
        for g in req
            .supplementary_gids
            .iter()
            .flat_map(|list| list.split(','))
        {
            app.supplementary_gids.push(
                g.parse()
                    .map_err(|_| anyhow!("--supplementary-gids must be integers"))?,
            );
        }
    }
    // rkt's order, lowest first: the image, the app's --environment, --inherit-env (only
    // what is still unset), --set-env-file, --set-env.
    for (name, value) in key_values(&req.environment, "environment")? {
        set_env(&mut app.environment, &name, &value, true);
    }
    for (name, value) in &pod.env.inherited {
        set_env(&mut app.environment, name, value, false);
    }
    for (name, value) in pod.env.from_file.iter().chain(&pod.env.explicit) {
        set_env(&mut app.environment, name, value, true);
    }
    for (k, v) in key_values(&req.user_annotations, "user-annotation")? {
        app.user_annotations.insert(k, v);
    }
    for (k, v) in key_values(&req.user_labels, "user-label")? {
        app.user_labels.insert(k, v);
    }
    isolators::apply(&mut app, ra, pod.allow_image_caps)?;
    Ok(app)
}

#[cfg(test)]
mod tests;
