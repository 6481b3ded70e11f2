//! Which volume is mounted where in an app, by rkt's rules (docs/stage-contract.md, "What every app gets"): the runtime app's
//! `mounts` first, then every image mount point whose path is not mounted yet, fulfilled by
//! the volume of the same name or by an implicit empty volume `<app>-<mount point>`.
//!
//! A relative path (`--mount volume=v,target=var/data`) is a path inside the app's root, as
//! rkt joins it to the root: every path here is made absolute and cleaned (`..` stops at the
//! root), so `var/data` fulfils the image's mount point `/var/data`. rkt compared the raw
//! strings and then mounted both at the same place; one mount is what an operator means.
use super::{App, RuntimeApp, Volume};
use crate::ValidationError;

/// One volume mounted into an app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppMount {
    pub volume: Volume,
    /// Absolute, cleaned path inside the app.
    pub path: String,
    /// The mount point's `readOnly`, overridden by the volume's explicit `readOnly`.
    pub read_only: bool,
    /// Created because a mount point had no volume (stage1 warns about it).
    pub implicit: bool,
}

/// The mounts of `ra` (whose effective app section is `app`) given the pod's volumes.
pub fn app_mounts(
    ra: &RuntimeApp,
    app: &App,
    pod_volumes: &[Volume],
) -> Result<Vec<AppMount>, ValidationError> {
    let mut mounts: Vec<AppMount> = Vec::new();
    for m in &ra.mounts {
        let volume = match &m.app_volume {
            Some(v) => v.clone(),
            None => pod_volumes
                .iter()
                .find(|v| v.name == m.volume)
                .cloned()
                .ok_or_else(|| {
                    ValidationError::invalid(
                        format!("app {:?} mount {:?}", ra.name, m.path),
                        &m.volume,
                        "no volume of that name in the pod (add it with --volume)",
                    )
                })?,
        };
        let base = app
            .mount_points
            .iter()
            .find(|mp| mp.name == m.volume)
            .map(|mp| mp.read_only);
        mounts.push(AppMount {
            read_only: volume.read_only.or(base).unwrap_or(false),
            volume,
            path: mount_target(&m.path),
            implicit: false,
        });
    }
    for mp in &app.mount_points {
        let path = mount_target(&mp.path);
        if mounts.iter().any(|m| m.path == path) {
            continue;
        }
        match pod_volumes.iter().find(|v| v.name == mp.name) {
            Some(v) => mounts.push(AppMount {
                read_only: v.read_only.unwrap_or(mp.read_only),
                volume: v.clone(),
                path,
                implicit: false,
            }),
            None => {
                let mut volume = Volume {
                    name: format!("{}-{}", ra.name, mp.name),
                    kind: "empty".into(),
                    ..Volume::default()
                };
                volume.fill_defaults();
                mounts.push(AppMount {
                    volume,
                    path,
                    read_only: mp.read_only,
                    implicit: true,
                });
            }
        }
    }
    for m in &mounts {
        if !matches!(m.volume.kind.as_str(), "host" | "empty") {
            return Err(ValidationError::invalid(
                format!("volume {:?} kind", m.volume.name),
                &m.volume.kind,
                "must be host or empty",
            ));
        }
    }
    Ok(mounts)
}

/// A mount path as a path inside the app: relative paths start at its root, and `/a//b/`,
/// `a/./b` and `/a/b` are one target.
pub fn mount_target(path: &str) -> String {
    crate::go::clean_path(&format!("/{path}"))
}

/// Whether a volume mounted at `mount` (a path from [`mount_target`]) provides `path`: the mount
/// point itself or anything below it.
pub fn covers(mount: &str, path: &str) -> bool {
    let path = mount_target(path);
    mount == "/"
        || path == mount
        || path
            .strip_prefix(mount)
            .is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Mount, MountPoint, RuntimeImage};

    fn app(mps: &[(&str, &str, bool)]) -> App {
        App {
            exec: vec!["/x".into()],
            user: "0".into(),
            group: "0".into(),
            mount_points: mps
                .iter()
                .map(|(n, p, ro)| MountPoint {
                    name: n.to_string(),
                    path: p.to_string(),
                    read_only: *ro,
                })
                .collect(),
            ..App::default()
        }
    }

    fn ra(name: &str, mounts: &[(&str, &str)]) -> RuntimeApp {
        RuntimeApp {
            name: name.into(),
            image: RuntimeImage::default(),
            mounts: mounts
                .iter()
                .map(|(v, p)| Mount {
                    volume: v.to_string(),
                    path: p.to_string(),
                    app_volume: None,
                })
                .collect(),
            ..RuntimeApp::default()
        }
    }

    fn host(name: &str, ro: Option<bool>) -> Volume {
        Volume {
            name: name.into(),
            kind: "host".into(),
            source: Some("/srv".into()),
            read_only: ro,
            ..Volume::default()
        }
    }

    #[test]
    fn mount_points_are_fulfilled_by_name_and_read_only_overrides() {
        let a = app(&[("work", "/backup", true)]);
        let m = app_mounts(&ra("backup", &[]), &a, &[host("work", None)]).unwrap();
        assert_eq!((m[0].path.as_str(), m[0].read_only), ("/backup", true));
        let m = app_mounts(&ra("backup", &[]), &a, &[host("work", Some(false))]).unwrap();
        assert!(
            !m[0].read_only,
            "an explicit readOnly=false beats the mount point"
        );
        let rw = app(&[("work", "/w", false)]);
        let m = app_mounts(&ra("w", &[]), &rw, &[host("work", Some(true))]).unwrap();
        assert!(m[0].read_only);
    }

    #[test]
    fn mount_points_without_volume_get_an_implicit_empty_one() {
        let a = app(&[("data", "/var/data", false)]);
        let m = app_mounts(&ra("app1", &[]), &a, &[]).unwrap();
        assert!(m[0].implicit);
        assert_eq!(m[0].volume.name, "app1-data");
        assert_eq!(m[0].volume.kind, "empty");
        assert_eq!(m[0].volume.mode.as_deref(), Some("0755"));
    }

    #[test]
    fn explicit_mounts_supplement_and_override_mount_points() {
        let a = app(&[("data", "/var/data", true)]);
        let m = app_mounts(
            &ra("app1", &[("logs", "/var/log"), ("logs", "/var/data/")]),
            &a,
            &[host("logs", None)],
        )
        .unwrap();
        assert_eq!(
            m.len(),
            2,
            "the mount on /var/data replaces the mount point"
        );
        assert!(m.iter().all(|x| x.volume.name == "logs"));
        assert!(!m.iter().any(|x| x.implicit));
    }

    #[test]
    fn unknown_volumes_are_errors() {
        let e = app_mounts(&ra("app1", &[("nope", "/x")]), &app(&[]), &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("nope"), "{e}");
    }

    #[test]
    fn relative_targets_are_inside_the_app_and_fulfil_mount_points() {
        let a = app(&[("data", "/var/data", true), ("rel", "opt/rel", false)]);
        let m = app_mounts(
            &ra("app1", &[("data", "var/data"), ("data", "../../x/./y/")]),
            &a,
            &[host("data", None)],
        )
        .unwrap();
        let paths: Vec<_> = m.iter().map(|x| x.path.as_str()).collect();
        assert_eq!(paths, ["/var/data", "/x/y", "/opt/rel"]);
        assert!(
            m[0].read_only,
            "the mount point of the volume's name sets readOnly"
        );
        assert!(
            m[2].implicit,
            "a relative mount point gets its implicit volume"
        );
    }

    #[test]
    fn a_volume_covers_its_mount_point_and_what_is_below() {
        assert!(covers("/opt/tools", "/opt/tools"));
        assert!(covers("/opt/tools", "opt/tools/bin/x"));
        assert!(covers("/opt/tools", "/opt//tools/./x"));
        assert!(covers("/", "/bin/sh"));
        assert!(!covers("/opt/tools", "/opt/toolsx/x"));
        assert!(!covers("/opt/tools", "/opt"));
        assert!(!covers("/opt/tools", "/opt/tools/../x"));
    }

    #[test]
    fn unused_volumes_are_ignored() {
        let m = app_mounts(&ra("app1", &[]), &app(&[]), &[host("unused", None)]).unwrap();
        assert!(m.is_empty());
    }
}
