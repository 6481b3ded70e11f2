//! The pure part of stage1: from the pod manifest, the entrypoint arguments and a few facts read
//! from the app images, decide what every app runs and what is mounted where. `setup` carries
//! the plan out; nothing here touches the system, so every rule is unit-tested.
use std::collections::BTreeMap;

use aci::schema::App;
use anyhow::{bail, Result};

use crate::contract::{DEFAULT_ENV, STAGE2_DIR};

/// Facts about one app that had to be read from its root filesystem.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AppFacts {
    pub uid: u32,
    pub gid: u32,
    /// `exec[0]` resolved to an absolute path inside the app root.
    pub exec_path: String,
    /// Each event handler's `exec[0]`, resolved the same way, keyed by its original value.
    pub handler_paths: BTreeMap<String, String>,
    /// Whether the image brings its own `/etc/hosts`.
    pub has_etc_hosts: bool,
    /// Capabilities the app keeps (`None`: unrestricted).
    pub caps: Option<Vec<u32>>,
}

/// What stage2-init needs to start one app.
#[derive(Debug, Clone, PartialEq)]
pub struct AppLaunch {
    pub name: String,
    /// The app's root inside the stage1 root.
    pub root: String,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub cwd: String,
    pub env: Vec<(String, String)>,
    pub exec: Vec<String>,
    pub pre_start: Vec<Vec<String>>,
    pub post_stop: Vec<Vec<String>>,
    /// Capabilities the app keeps; `None` leaves them alone (`--insecure-options=capabilities`).
    pub caps: Option<Vec<u32>>,
}

/// Where the source of a mount comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum MountSource {
    /// A fresh procfs for the pod's PID namespace.
    Proc,
    /// The pod-wide `/dev` of the stage1 root (recursive bind).
    PodDev,
    /// The host's `/sys`, read-only.
    Sysfs,
    /// A file or directory of the stage1 root (absolute inside it).
    Stage1Path(String),
    /// A host volume: a file, directory or device node of the host.
    Host {
        path: String,
        recursive: bool,
        /// The source is a device node: it stays usable when everything else is `nodev`.
        device: bool,
    },
    /// An empty volume: `sharedVolumes/<name>` in the pod directory, shared by every app.
    Shared(String),
}

/// One mount inside an app's root. `target` is a path inside the app root; it is resolved
/// there like a chroot would, so symlinks can never lead outside.
#[derive(Debug, Clone, PartialEq)]
pub struct AppMount {
    pub source: MountSource,
    pub target: String,
    pub read_only: bool,
    /// Whether the target is a file (else a directory) when it has to be created.
    pub file: bool,
    /// Read-only applies to submounts as well (recursive binds).
    pub recursive: bool,
}

/// A volume mount with what had to be learnt from the host about its source.
#[derive(Debug, Clone, PartialEq)]
pub struct VolumeMount {
    pub mount: aci::schema::AppMount,
    /// The host source is a file (its target is created as a file).
    pub source_is_file: bool,
    /// The host source is a character or block device (an operator-given device volume).
    pub source_is_device: bool,
}

/// An app with its launch spec and mounts.
#[derive(Debug, Clone, PartialEq)]
pub struct AppPlan {
    pub launch: AppLaunch,
    pub mounts: Vec<AppMount>,
    pub read_only_rootfs: bool,
}

/// Pod-wide settings that come from the arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct PodSettings {
    pub hostname: String,
    /// `/etc/rkt-hosts` exists in the stage1 root (stage0 got `--hosts-entry`).
    pub has_rkt_hosts: bool,
    /// stage0 generated `/etc/rkt-hosts` (mode `stage0`), so the hostname is ours to add; with
    /// `--hosts-entry=host` it is the host's file, bound read-only, and never touched.
    pub append_hostname: bool,
    /// `/etc/rkt-resolv.conf` exists in the stage1 root.
    pub has_rkt_resolv: bool,
}

/// The app's root inside the stage1 root.
pub fn app_root(name: &str) -> String {
    format!("/{STAGE2_DIR}/{name}/rootfs")
}

/// The environment rkt gives an app: defaults for what the image leaves unset, the app's
/// environment in order, then `AC_APP_NAME` forced (REFERENCE §3.6).
pub fn compose_env(app_name: &str, app: &App) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = DEFAULT_ENV
        .iter()
        .filter(|(k, _)| !app.environment.iter().any(|e| e.name == *k))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for e in &app.environment {
        if e.name != "AC_APP_NAME" {
            env.push((e.name.clone(), e.value.clone()));
        }
    }
    env.push(("AC_APP_NAME".into(), app_name.into()));
    env
}

/// Builds one app's plan.
pub fn plan_app(
    name: &str,
    app: &App,
    read_only_rootfs: bool,
    facts: &AppFacts,
    pod: &PodSettings,
    volumes: &[VolumeMount],
) -> Result<AppPlan> {
    if app.exec.is_empty() {
        bail!("app {name} has no exec: give one in the image or with --exec");
    }
    let mut exec = app.exec.clone();
    exec[0] = facts.exec_path.clone();
    let handler = |kind: &str| -> Vec<Vec<String>> {
        app.event_handlers
            .iter()
            .filter(|h| h.name == kind && !h.exec.is_empty())
            .map(|h| {
                let mut argv = h.exec.clone();
                if let Some(p) = facts.handler_paths.get(&argv[0]) {
                    argv[0] = p.clone();
                }
                argv
            })
            .collect()
    };
    let cwd = if app.working_directory.is_empty() {
        "/".to_string()
    } else {
        app.working_directory.clone()
    };
    let launch = AppLaunch {
        name: name.to_string(),
        root: app_root(name),
        uid: facts.uid,
        gid: facts.gid,
        groups: app.supplementary_gids.clone(),
        cwd,
        env: compose_env(name, app),
        exec,
        pre_start: handler("pre-start"),
        post_stop: handler("post-stop"),
        caps: facts.caps.clone(),
    };
    let mut mounts = base_mounts(facts, pod);
    mounts.extend(volume_mounts(volumes));
    Ok(AppPlan {
        launch,
        mounts,
        read_only_rootfs,
    })
}

/// Volume mounts, parents before the mounts nested in them.
fn volume_mounts(volumes: &[VolumeMount]) -> Vec<AppMount> {
    let mut out: Vec<AppMount> = volumes
        .iter()
        .map(|v| {
            let vol = &v.mount.volume;
            let (source, recursive) = match vol.kind.as_str() {
                "host" => {
                    let recursive = vol.recursive.unwrap_or(true);
                    (
                        MountSource::Host {
                            path: vol.source.clone().unwrap_or_default(),
                            recursive,
                            device: v.source_is_device,
                        },
                        recursive,
                    )
                }
                _ => (MountSource::Shared(vol.name.clone()), true),
            };
            AppMount {
                source,
                target: v.mount.path.clone(),
                read_only: v.mount.read_only,
                file: v.source_is_file,
                recursive,
            }
        })
        .collect();
    out.sort_by_key(|m| m.target.split('/').filter(|c| !c.is_empty()).count());
    out
}

/// The mounts every app gets (appc's required files and devices, REFERENCE §3.7).
fn base_mounts(facts: &AppFacts, pod: &PodSettings) -> Vec<AppMount> {
    let mount = |source, target: &str, read_only, file| AppMount {
        source,
        target: target.to_string(),
        read_only,
        file,
        recursive: true,
    };
    let mut mounts = vec![
        mount(MountSource::Proc, "/proc", false, false),
        mount(MountSource::PodDev, "/dev", false, false),
        mount(MountSource::Sysfs, "/sys", true, false),
        mount(
            MountSource::Stage1Path("/etc/hostname".into()),
            "/etc/hostname",
            false,
            true,
        ),
    ];
    if pod.has_rkt_hosts {
        mounts.push(mount(
            MountSource::Stage1Path("/etc/rkt-hosts".into()),
            "/etc/hosts",
            false,
            true,
        ));
    } else if !facts.has_etc_hosts {
        mounts.push(mount(
            MountSource::Stage1Path("/etc/hosts-fallback".into()),
            "/etc/hosts",
            false,
            true,
        ));
    }
    if pod.has_rkt_resolv {
        mounts.push(mount(
            MountSource::Stage1Path("/etc/rkt-resolv.conf".into()),
            "/etc/resolv.conf",
            false,
            true,
        ));
    }
    mounts
}

/// Contents of `/etc/hosts-fallback`: localhost entries plus the pod's hostname.
pub fn hosts_fallback(hostname: &str) -> String {
    format!(
        "127.0.0.1\tlocalhost localhost.localdomain localhost4 localhost4.localdomain4\n\
         ::1\tlocalhost localhost.localdomain localhost6 localhost6.localdomain6\n\
         127.0.0.1\t{hostname}\n"
    )
}

/// Serialises the plan for stage2-init (format documented in stage2-init/src/plan.rs).
pub fn init_plan(
    apps: &[AppLaunch],
    interactive: bool,
    verbose: bool,
    stop_timeout: u32,
) -> Vec<u8> {
    let mut out = Vec::new();
    let mut field = |s: &str| {
        out.extend_from_slice(s.as_bytes());
        out.push(0);
    };
    field(crate::contract::PLAN_MAGIC);
    field("stop-timeout");
    field(&stop_timeout.to_string());
    field("interactive");
    field(if interactive { "1" } else { "0" });
    field("verbose");
    field(if verbose { "1" } else { "0" });
    for app in apps {
        field("app");
        field(&app.name);
        field("root");
        field(&app.root);
        field("uid");
        field(&app.uid.to_string());
        field("gid");
        field(&app.gid.to_string());
        field("groups");
        field(&app.groups.len().to_string());
        for g in &app.groups {
            field(&g.to_string());
        }
        field("cwd");
        field(&app.cwd);
        field("env");
        field(&app.env.len().to_string());
        for (k, v) in &app.env {
            field(&format!("{k}={v}"));
        }
        field("exec");
        field(&app.exec.len().to_string());
        for a in &app.exec {
            field(a);
        }
        if let Some(caps) = &app.caps {
            field("caps");
            field(&caps.len().to_string());
            for c in caps {
                field(&c.to_string());
            }
        }
        for (key, handlers) in [("pre-start", &app.pre_start), ("post-stop", &app.post_stop)] {
            for argv in handlers {
                field(key);
                field(&argv.len().to_string());
                for a in argv {
                    field(a);
                }
            }
        }
    }
    out
}

/// The content of `rkt/env/<app>`: `KEY=VALUE` entries, each ended by a NUL byte (as in
/// `/proc/<pid>/environ`), so a value may hold any byte but NUL, newlines included, and is
/// read back exactly (docs/stage-contract.md).
pub fn env_file(env: &[(String, String)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in env {
        out.extend_from_slice(k.as_bytes());
        out.push(b'=');
        out.extend_from_slice(v.as_bytes());
        out.push(0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use aci::schema::{EnvVar, EventHandler};

    fn app(env: &[(&str, &str)]) -> App {
        App {
            exec: vec!["sh".into(), "-c".into(), "true".into()],
            user: "0".into(),
            group: "0".into(),
            environment: env
                .iter()
                .map(|(n, v)| EnvVar {
                    name: n.to_string(),
                    value: v.to_string(),
                })
                .collect(),
            ..App::default()
        }
    }

    fn pod() -> PodSettings {
        PodSettings {
            hostname: "rkt-x".into(),
            has_rkt_hosts: false,
            append_hostname: false,
            has_rkt_resolv: false,
        }
    }

    #[test]
    fn defaults_fill_only_what_the_image_leaves_unset() {
        let env = compose_env("web", &app(&[("HOME", "/srv"), ("FOO", "bar")]));
        let keys: Vec<_> = env.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "PATH",
                "SHELL",
                "USER",
                "LOGNAME",
                "HOME",
                "FOO",
                "AC_APP_NAME"
            ]
        );
        assert!(env.contains(&("HOME".into(), "/srv".into())));
        assert_eq!(env.last().unwrap(), &("AC_APP_NAME".into(), "web".into()));
    }

    #[test]
    fn ac_app_name_cannot_be_overridden() {
        let env = compose_env("web", &app(&[("AC_APP_NAME", "evil")]));
        assert_eq!(env.iter().filter(|(k, _)| k == "AC_APP_NAME").count(), 1);
        assert!(env.contains(&("AC_APP_NAME".into(), "web".into())));
    }

    #[test]
    fn exec_and_handlers_use_resolved_paths() {
        let mut a = app(&[]);
        a.event_handlers = vec![EventHandler {
            name: "pre-start".into(),
            exec: vec!["prep".into(), "x".into()],
        }];
        let facts = AppFacts {
            uid: 1000,
            gid: 100,
            exec_path: "/bin/sh".into(),
            handler_paths: [("prep".to_string(), "/usr/bin/prep".to_string())].into(),
            has_etc_hosts: true,
            caps: Some(vec![0]),
        };
        let plan = plan_app("web", &a, false, &facts, &pod(), &[]).unwrap();
        assert_eq!(plan.launch.exec, ["/bin/sh", "-c", "true"]);
        assert_eq!(
            plan.launch.pre_start,
            vec![vec!["/usr/bin/prep".to_string(), "x".into()]]
        );
        assert_eq!(plan.launch.root, "/opt/stage2/web/rootfs");
        assert_eq!(plan.launch.cwd, "/");
        assert_eq!((plan.launch.uid, plan.launch.gid), (1000, 100));
        assert_eq!(plan.launch.caps, Some(vec![0]));
    }

    #[test]
    fn hosts_file_only_when_the_image_has_none_or_entries_were_given() {
        let a = app(&[]);
        let mut facts = AppFacts {
            exec_path: "/bin/sh".into(),
            has_etc_hosts: true,
            ..AppFacts::default()
        };
        let targets = |p: &AppPlan| {
            p.mounts
                .iter()
                .map(|m| m.target.clone())
                .collect::<Vec<_>>()
        };
        let with_hosts = plan_app("a", &a, false, &facts, &pod(), &[]).unwrap();
        assert!(!targets(&with_hosts).contains(&"/etc/hosts".to_string()));
        facts.has_etc_hosts = false;
        let without = plan_app("a", &a, false, &facts, &pod(), &[]).unwrap();
        assert!(without.mounts.iter().any(|m| m.target == "/etc/hosts"
            && m.source == MountSource::Stage1Path("/etc/hosts-fallback".into())));
        facts.has_etc_hosts = true;
        let mut p = pod();
        p.has_rkt_hosts = true;
        p.has_rkt_resolv = true;
        let entries = plan_app("a", &a, false, &facts, &p, &[]).unwrap();
        assert!(entries.mounts.iter().any(|m| m.target == "/etc/hosts"
            && m.source == MountSource::Stage1Path("/etc/rkt-hosts".into())));
        assert!(targets(&entries).contains(&"/etc/resolv.conf".to_string()));
    }

    #[test]
    fn an_app_without_exec_is_an_error() {
        let mut a = app(&[]);
        a.exec.clear();
        assert!(plan_app("a", &a, false, &AppFacts::default(), &pod(), &[]).is_err());
    }

    #[test]
    fn volumes_mount_after_the_base_mounts_parents_first() {
        let vol = |name: &str, kind: &str, path: &str, ro| VolumeMount {
            mount: aci::schema::AppMount {
                volume: aci::schema::Volume {
                    name: name.into(),
                    kind: kind.into(),
                    source: (kind == "host").then(|| "/srv".to_string()),
                    recursive: Some(false),
                    ..Default::default()
                },
                path: path.into(),
                read_only: ro,
                implicit: false,
            },
            source_is_file: false,
            source_is_device: false,
        };
        let facts = AppFacts {
            exec_path: "/bin/sh".into(),
            ..AppFacts::default()
        };
        let plan = plan_app(
            "a",
            &app(&[]),
            false,
            &facts,
            &pod(),
            &[
                vol("deep", "empty", "/data/sub", false),
                vol("top", "host", "/data", true),
            ],
        )
        .unwrap();
        let n = plan.mounts.len();
        assert_eq!(plan.mounts[n - 2].target, "/data");
        assert_eq!(
            plan.mounts[n - 2].source,
            MountSource::Host {
                path: "/srv".into(),
                recursive: false,
                device: false,
            }
        );
        assert!(plan.mounts[n - 2].read_only && !plan.mounts[n - 2].recursive);
        assert_eq!(
            plan.mounts[n - 1].source,
            MountSource::Shared("deep".into())
        );
    }

    /// The plan both sides are tested against (docs/stage-contract.md, "The plan").
    fn golden_launches() -> Vec<AppLaunch> {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        vec![
            AppLaunch {
                name: "web".into(),
                root: "/opt/stage2/web/rootfs".into(),
                uid: 1000,
                gid: 100,
                groups: vec![100, 2048],
                cwd: "/srv".into(),
                env: vec![
                    ("PATH".into(), "/bin".into()),
                    ("GREETING".into(), "hello\nLD_PRELOAD=/evil.so".into()),
                    ("AC_APP_NAME".into(), "web".into()),
                ],
                exec: s(&["/bin/httpd", "-f", "two words"]),
                pre_start: vec![s(&["/bin/prepare", "x"])],
                post_stop: vec![s(&["/bin/cleanup"])],
                caps: Some(vec![0, 10, 27]),
            },
            AppLaunch {
                name: "db".into(),
                root: "/opt/stage2/db/rootfs".into(),
                uid: 0,
                gid: 0,
                groups: vec![],
                cwd: "/".into(),
                env: vec![],
                exec: s(&["/bin/db"]),
                pre_start: vec![],
                post_stop: vec![],
                caps: None,
            },
        ]
    }

    const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/golden/init-plan");

    #[test]
    fn the_plan_writer_matches_the_golden_plan() {
        let written = init_plan(&golden_launches(), false, true, 10);
        if std::env::var_os("BLESS").is_some() {
            std::fs::write(GOLDEN, &written).unwrap();
        }
        let golden = std::fs::read(GOLDEN).expect("docs/golden/init-plan (BLESS=1 writes it)");
        assert_eq!(
            written, golden,
            "the plan format changed: update the contract and the reader"
        );
    }

    #[test]
    fn init_plan_is_nul_separated() {
        let launch = AppLaunch {
            name: "a".into(),
            root: "/opt/stage2/a/rootfs".into(),
            uid: 0,
            gid: 0,
            groups: vec![5],
            cwd: "/".into(),
            env: vec![("A".into(), "b c".into())],
            exec: vec!["/bin/echo".into(), "hi\nthere".into()],
            pre_start: vec![],
            post_stop: vec![vec!["/bin/true".into()]],
            caps: Some(vec![0, 27]),
        };
        let bytes = init_plan(&[launch], false, false, 10);
        let fields: Vec<&[u8]> = bytes.split(|b| *b == 0).collect();
        assert_eq!(fields[0], b"rkt-stage2-plan-v1");
        assert!(fields.contains(&&b"hi\nthere"[..]));
        assert!(fields.contains(&&b"A=b c"[..]));
        let caps = fields.iter().position(|f| *f == b"caps").unwrap();
        assert_eq!(&fields[caps + 1..caps + 4], [&b"2"[..], b"0", b"27"]);
        assert_eq!(*bytes.last().unwrap(), 0);
    }
}
