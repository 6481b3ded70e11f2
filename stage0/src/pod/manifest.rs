//! The pod manifest `rkt run`/`prepare` generate (REFERENCE §1.3): a full copy of every image's
//! app section with the command-line overrides applied.
use std::collections::HashSet;

use aci::isolator::{LINUX_CAPABILITIES_REMOVE_SET, LINUX_CAPABILITIES_RETAIN_SET};
use aci::schema::{
    Annotation, App, EnvVar, ImageManifest, Isolator, Mount, PodManifest, RuntimeApp, RuntimeImage,
    Volume,
};
use anyhow::{anyhow, bail, Context, Result};
use store::ImageKey;

use crate::cli::apps::{AppArgs, MountArg};
use crate::contract::ANN_MUTABLE;

/// One app of the pod: its command-line flags and its resolved image.
pub struct ResolvedApp<'a> {
    pub args: &'a AppArgs,
    pub key: ImageKey,
    pub manifest: ImageManifest,
}

/// Pod-wide inputs of the generated manifest.
#[derive(Default)]
pub struct PodInputs {
    pub volumes: Vec<Volume>,
    pub mounts: Vec<MountArg>,
    /// Environment for every app, already in precedence order (inherited, file, --set-env).
    pub env: EnvLayers,
    /// `--insecure-options=capabilities`: stage1 restricts no capabilities, so an image's own
    /// capability isolators need no operator consent.
    pub allow_image_caps: bool,
}

/// `--inherit-env` values (never override the image), then `--set-env-file`, then `--set-env`.
#[derive(Default)]
pub struct EnvLayers {
    pub inherited: Vec<(String, String)>,
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
        let name = match ra.args.get("name") {
            Some(n) => {
                if !aci::validate::is_ac_name(n) {
                    bail!("invalid app name format {n:?}: app names are lower-case letters, digits and dashes");
                }
                n.to_string()
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
            read_only_root_fs: match ra.args.get("readonly-rootfs") {
                Some(v) => crate::cli::flags::parse_bool(v)
                    .map_err(|_| anyhow!("--readonly-rootfs must be set with a boolean"))?,
                None => false,
            },
            mounts: mounts(&ra.args.mounts, &pod.mounts),
            annotations: key_values(&ra.args.all("annotation"), "annotation")?
                .into_iter()
                .map(|(name, value)| Annotation { name, value })
                .collect(),
        });
    }
    Ok(PodManifest {
        ac_version: crate::cmd::version::RKT_VERSION.to_string(),
        ac_kind: "PodManifest".into(),
        apps: runtime_apps,
        volumes: pod.volumes.clone(),
        isolators: Vec::new(),
        annotations: vec![Annotation {
            name: ANN_MUTABLE.into(),
            value: "false".into(),
        }],
        ports: Vec::new(),
        ..PodManifest::default()
    })
}

/// Per-app mounts, then pod-wide ones, keeping the first for each (cleaned) path.
fn mounts(app: &[MountArg], pod: &[MountArg]) -> Vec<Mount> {
    let mut seen = HashSet::new();
    app.iter()
        .chain(pod)
        .filter(|m| seen.insert(clean_path(&m.target)))
        .map(|m| Mount {
            volume: m.volume.clone(),
            path: m.target.clone(),
            app_volume: None,
        })
        .collect()
}

/// Lexically cleaned absolute path (`/a//b/../c/` → `/a/c`).
pub fn clean_path(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

fn key_values(values: &[&str], flag: &str) -> Result<Vec<(String, String)>> {
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
    let exec = ra.args.get("exec");
    let mut app = match (&ra.manifest.app, exec) {
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
    if let Some(exec) = exec {
        app.exec = vec![exec.to_string()];
    }
    app.exec.extend(ra.args.args.iter().cloned());
    if let Some(dir) = ra.args.get("working-dir") {
        app.working_directory = dir.to_string();
    }
    if let Some(user) = ra.args.get("user") {
        app.user = user.to_string();
    }
    if let Some(group) = ra.args.get("group") {
        app.group = group.to_string();
    }
    let gids = ra.args.all("supplementary-gids");
    if !gids.is_empty() {
        app.supplementary_gids = Vec::new();
        for list in gids {
            for g in list.split(',') {
                app.supplementary_gids.push(
                    g.parse()
                        .map_err(|_| anyhow!("--supplementary-gids must be integers"))?,
                );
            }
        }
    }
    for (name, value) in &pod.env.inherited {
        set_env(&mut app.environment, name, value, false);
    }
    for (name, value) in &pod.env.explicit {
        set_env(&mut app.environment, name, value, true);
    }
    for (name, value) in key_values(&ra.args.all("environment"), "environment")? {
        set_env(&mut app.environment, &name, &value, true);
    }
    for (k, v) in key_values(&ra.args.all("user-annotation"), "user-annotation")? {
        app.user_annotations.insert(k, v);
    }
    for (k, v) in key_values(&ra.args.all("user-label"), "user-label")? {
        app.user_labels.insert(k, v);
    }
    let caps = caps_override(ra.args).with_context(|| format!("image {}", ra.manifest.name))?;
    if caps.is_none() {
        if let Err(refused) = check_image_caps(&ra.manifest.name, &app.isolators, CapsGrant::Flag) {
            if !pod.allow_image_caps {
                return Err(refused);
            }
            // --insecure-options=capabilities lifts the restriction for this run only: the
            // image's wish is not recorded in the pod manifest, where a later run-prepared
            // without that option would grant it.
            app.isolators
                .retain(|i| !i.name.starts_with("os/linux/capabilities-"));
        }
    }
    apply_isolators(&mut app, ra.args, caps)
        .with_context(|| format!("image {}", ra.manifest.name))?;
    Ok(app)
}

/// Where the operator grants capabilities beyond the default, for the error message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapsGrant {
    /// `--caps-retain` after the image.
    Flag,
    /// The app's own `app` section in a `--pod-manifest`.
    PodManifest,
}

/// An image may only narrow rkt's default capabilities: a retain set within the default, or
/// any remove set. Anything more (e.g. `CAP_DAC_READ_SEARCH`, which reads host files through
/// `open_by_handle_at`) needs the operator's consent, as in Docker and runc, where images
/// never choose their capabilities. Must run before the pod directory is created.
pub fn check_image_caps(image: &str, isolators: &[Isolator], grant: CapsGrant) -> Result<()> {
    let Some(retained) = aci::isolator::retained_capabilities(isolators) else {
        return Ok(());
    };
    let beyond: Vec<&str> = retained
        .iter()
        .map(String::as_str)
        .filter(|c| !aci::isolator::is_default_capability(c))
        .collect();
    if beyond.is_empty() {
        return Ok(());
    }
    let how = match grant {
        CapsGrant::Flag => format!(
            "to grant them, add --caps-retain={} after the image",
            retained.join(",")
        ),
        CapsGrant::PodManifest => {
            "to grant them, give the app its own \"app\" section with a capabilities-retain-set isolator in the pod manifest".to_string()
        }
    };
    bail!(
        "image {image:?} asks for capabilities beyond rkt's default set: {}; {how} (or run with --insecure-options=capabilities)",
        beyond.join(",")
    )
}

/// The last value of a per-app flag or of its deprecated alias (rkt registers both with one
/// setter, so the later one wins).
fn last_of<'a>(args: &'a AppArgs, names: &[&str]) -> Option<&'a str> {
    args.flags
        .iter()
        .rev()
        .find(|(n, _)| names.contains(&n.as_str()))
        .map(|(_, v)| v.as_str())
}

/// `--caps-retain`/`--caps-remove` (and rkt's deprecated `--cap-retain`/`--cap-remove`): the
/// one capability isolator that replaces the image's.
fn caps_override(args: &AppArgs) -> Result<Option<Isolator>> {
    let retain = last_of(args, &["caps-retain", "cap-retain"]);
    let remove = last_of(args, &["caps-remove", "cap-remove"]);
    let (flag, value, name) = match (retain, remove) {
        (Some(_), Some(_)) => {
            bail!("cannot use both --caps-retain and --caps-remove on the same image")
        }
        (Some(v), None) => ("caps-retain", v, LINUX_CAPABILITIES_RETAIN_SET),
        (None, Some(v)) => ("caps-remove", v, LINUX_CAPABILITIES_REMOVE_SET),
        (None, None) => return Ok(None),
    };
    Ok(Some(Isolator {
        name: name.to_string(),
        value: serde_json::json!({ "set": capability_list(flag, value)? }),
    }))
}

/// A comma list of capability names, any case, with or without `CAP_`, in canonical spelling.
pub fn capability_list(flag: &str, value: &str) -> Result<Vec<&'static str>> {
    let mut out = Vec::new();
    for item in value.split(',') {
        let Some(name) = aci::isolator::capability_name(item) else {
            bail!("unknown capability {item:?} in --{flag}={value:?}: use names such as CAP_NET_ADMIN (see capabilities(7))");
        };
        if !out.contains(&name) {
            out.push(name);
        }
    }
    Ok(out)
}

/// `--memory`/`--cpu` are appended (the last one wins in stage1), then a capability override
/// replaces every capability isolator of the image, in rkt's order.
fn apply_isolators(app: &mut App, args: &AppArgs, caps: Option<Isolator>) -> Result<()> {
    if let Some(mem) = args.get("memory") {
        let iso = aci::isolator::resource(aci::isolator::RESOURCE_MEMORY, None, mem)?;
        if let Ok(Some(bytes)) = aci::isolator::memory_limit_bytes(&iso) {
            if bytes < 4096 {
                bail!("memory limit of {bytes} bytes too low. Try a reasonable value, such as --memory=16M");
            }
        }
        app.isolators.push(iso);
    }
    if let Some(cpu) = args.get("cpu") {
        app.isolators.push(aci::isolator::resource(
            aci::isolator::RESOURCE_CPU,
            None,
            cpu,
        )?);
    }
    if let Some(caps) = caps {
        app.isolators.retain(|i| {
            i.name != LINUX_CAPABILITIES_RETAIN_SET && i.name != LINUX_CAPABILITIES_REMOVE_SET
        });
        app.isolators.push(caps);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names_and_clean_paths() {
        assert_eq!(
            default_app_name("example.com/reduce-worker").unwrap(),
            "reduce-worker"
        );
        assert_eq!(default_app_name("coreos.com/etcd").unwrap(), "etcd");
        assert_eq!(default_app_name("example.com/My_App").unwrap(), "my-app");
        assert_eq!(clean_path("/var//log/../data/"), "/var/data");
    }

    #[test]
    fn per_app_mounts_win_over_pod_wide_ones_on_the_same_path() {
        let app = [MountArg {
            volume: "a".into(),
            target: "/var/log/".into(),
        }];
        let pod = [
            MountArg {
                volume: "b".into(),
                target: "/var/log".into(),
            },
            MountArg {
                volume: "b".into(),
                target: "/data".into(),
            },
        ];
        let m = mounts(&app, &pod);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].volume, "a");
        assert_eq!(m[1].path, "/data");
    }

    #[test]
    fn environment_precedence_image_inherit_explicit() {
        let manifest = ImageManifest {
            name: "example.com/env".into(),
            app: Some(App {
                exec: vec!["/env".into()],
                user: "0".into(),
                group: "0".into(),
                environment: vec![EnvVar {
                    name: "FROM_IMAGE".into(),
                    value: "image".into(),
                }],
                ..App::default()
            }),
            ..ImageManifest::default()
        };
        let args = AppArgs {
            image: "example.com/env".into(),
            flags: vec![("environment".into(), "PER_APP=1".into())],
            ..AppArgs::default()
        };
        let pod = PodInputs {
            env: EnvLayers {
                inherited: vec![
                    ("FROM_IMAGE".into(), "parent".into()),
                    ("EXAMPLE_ENV".into(), "hello".into()),
                ],
                explicit: vec![("FOO".into(), "bar".into())],
            },
            ..PodInputs::default()
        };
        let key = ImageKey::parse(&format!("sha512-{}", "a".repeat(64))).unwrap();
        let ra = ResolvedApp {
            args: &args,
            key,
            manifest,
        };
        let pm = generate(&[ra], &pod, (0, 0)).unwrap();
        let env = &pm.apps[0].app.as_ref().unwrap().environment;
        let get = |n: &str| env.iter().find(|e| e.name == n).map(|e| e.value.clone());
        assert_eq!(get("FROM_IMAGE").as_deref(), Some("image"));
        assert_eq!(get("EXAMPLE_ENV").as_deref(), Some("hello"));
        assert_eq!(get("FOO").as_deref(), Some("bar"));
        assert_eq!(get("PER_APP").as_deref(), Some("1"));
        assert_eq!(pm.apps[0].name, "env");
        assert_eq!(pm.annotations[0].name, "coreos.com/rkt/stage1/mutable");
    }

    fn caps_image(isolators: &[(&str, &[&str])]) -> ImageManifest {
        ImageManifest {
            name: "example.com/caps".into(),
            app: Some(App {
                exec: vec!["/caps".into()],
                user: "0".into(),
                group: "0".into(),
                isolators: isolators
                    .iter()
                    .map(|(name, set)| Isolator {
                        name: name.to_string(),
                        value: serde_json::json!({ "set": set }),
                    })
                    .collect(),
                ..App::default()
            }),
            ..ImageManifest::default()
        }
    }

    fn generate_caps(
        isolators: &[(&str, &[&str])],
        flags: &[(&str, &str)],
        allow_image_caps: bool,
    ) -> Result<Vec<Isolator>> {
        let args = AppArgs {
            image: "example.com/caps".into(),
            flags: flags
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            ..AppArgs::default()
        };
        let ra = ResolvedApp {
            args: &args,
            key: ImageKey::parse(&format!("sha512-{}", "b".repeat(64))).unwrap(),
            manifest: caps_image(isolators),
        };
        let pod = PodInputs {
            allow_image_caps,
            ..PodInputs::default()
        };
        let pm = generate(&[ra], &pod, (0, 0))?;
        Ok(pm.apps[0].app.as_ref().unwrap().isolators.clone())
    }

    const RETAIN: &str = LINUX_CAPABILITIES_RETAIN_SET;
    const REMOVE: &str = LINUX_CAPABILITIES_REMOVE_SET;

    #[test]
    fn an_image_may_only_narrow_the_default_capabilities() {
        let e = generate_caps(
            &[(RETAIN, &["CAP_CHOWN", "CAP_DAC_READ_SEARCH"])],
            &[],
            false,
        )
        .unwrap_err();
        assert_eq!(
            format!("{e:#}"),
            "image \"example.com/caps\" asks for capabilities beyond rkt's default set: \
             CAP_DAC_READ_SEARCH; to grant them, add --caps-retain=CAP_CHOWN,CAP_DAC_READ_SEARCH \
             after the image (or run with --insecure-options=capabilities)"
        );
        // Narrowing is fine, and kept as the image wrote it.
        let narrowed = generate_caps(&[(RETAIN, &["CAP_CHOWN", "CAP_KILL"])], &[], false).unwrap();
        assert_eq!(
            narrowed[0].value["set"],
            serde_json::json!(["CAP_CHOWN", "CAP_KILL"])
        );
        assert!(generate_caps(&[(REMOVE, &["CAP_SYS_ADMIN"])], &[], false).is_ok());
        // Unknown names are not in the default set either.
        assert!(generate_caps(&[(RETAIN, &["CAP_MADE_UP"])], &[], false).is_err());
        // Every retain set counts, not just the one a runtime happens to read.
        assert!(generate_caps(
            &[(RETAIN, &["CAP_SYS_ADMIN"]), (RETAIN, &["CAP_CHOWN"])],
            &[],
            false
        )
        .is_err());
        // The operator's consent: --caps-retain, or no capability restriction at all.
        assert!(generate_caps(&[(RETAIN, &["CAP_DAC_READ_SEARCH"])], &[], true).is_ok());
        let granted = generate_caps(
            &[(RETAIN, &["CAP_DAC_READ_SEARCH"])],
            &[("caps-retain", "dac_read_search")],
            false,
        )
        .unwrap();
        assert_eq!(granted.len(), 1);
        assert_eq!(granted[0].name, RETAIN);
        assert_eq!(
            granted[0].value,
            serde_json::json!({"set": ["CAP_DAC_READ_SEARCH"]})
        );
    }

    #[test]
    fn caps_flags_replace_the_image_capability_isolators() {
        let iso = generate_caps(
            &[(RETAIN, &["CAP_CHOWN"]), (REMOVE, &["CAP_KILL"])],
            &[
                ("memory", "64M"),
                ("caps-remove", "CAP_MKNOD,cap_kill,MKNOD"),
            ],
            false,
        )
        .unwrap();
        let names: Vec<&str> = iso.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["resource/memory", REMOVE]);
        assert_eq!(
            iso[1].value,
            serde_json::json!({"set": ["CAP_MKNOD", "CAP_KILL"]})
        );
        // The deprecated spelling is an alias; the last of the two wins, as in rkt.
        let iso = generate_caps(
            &[],
            &[
                ("caps-retain", "CAP_CHOWN"),
                ("cap-retain", "CAP_NET_ADMIN"),
            ],
            false,
        )
        .unwrap();
        assert_eq!(iso[0].value, serde_json::json!({"set": ["CAP_NET_ADMIN"]}));
        let e = generate_caps(
            &[],
            &[("caps-retain", "CAP_CHOWN"), ("cap-remove", "CAP_KILL")],
            false,
        )
        .unwrap_err();
        assert_eq!(
            format!("{e:#}"),
            "image example.com/caps: cannot use both --caps-retain and --caps-remove on the same image"
        );
        let e = generate_caps(&[], &[("caps-retain", "CAP_CHOWN,CAP_NOPE")], false).unwrap_err();
        assert!(
            format!("{e:#}").contains("unknown capability \"CAP_NOPE\""),
            "{e:#}"
        );
        assert!(capability_list("caps-retain", "CAP_CHOWN,").is_err());
    }
}
