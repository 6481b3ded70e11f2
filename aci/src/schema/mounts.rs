//! Which volume is mounted where in an app, by rkt's rules (REFERENCE §7): the runtime app's
//! `mounts` first, then every image mount point whose path is not mounted yet, fulfilled by
//! the volume of the same name or by an implicit empty volume `<app>-<mount point>`.
use super::{App, RuntimeApp, Volume};
use crate::ValidationError;

/// One volume mounted into an app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppMount {
    pub volume: Volume,
    /// Absolute path inside the app.
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
            path: m.path.clone(),
            implicit: false,
        });
    }
    for mp in &app.mount_points {
        if mounts.iter().any(|m| same_path(&m.path, &mp.path)) {
            continue;
        }
        match pod_volumes.iter().find(|v| v.name == mp.name) {
            Some(v) => mounts.push(AppMount {
                read_only: v.read_only.unwrap_or(mp.read_only),
                volume: v.clone(),
                path: mp.path.clone(),
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
                    path: mp.path.clone(),
                    read_only: mp.read_only,
                    implicit: true,
                });
            }
        }
    }
    for m in &mounts {
        if !m.path.starts_with('/') {
            return Err(ValidationError::invalid(
                format!("app {:?} mount of volume {:?}", ra.name, m.volume.name),
                &m.path,
                "the target must be an absolute path",
            ));
        }
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

/// Paths equal once cleaned (`/a/b/` and `/a//b` are the same mount target).
fn same_path(a: &str, b: &str) -> bool {
    fn parts(p: &str) -> impl Iterator<Item = &str> {
        p.split('/').filter(|c| !c.is_empty() && *c != ".")
    }
    parts(a).eq(parts(b))
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
    fn unknown_volumes_and_relative_targets_are_errors() {
        let a = app(&[]);
        let e = app_mounts(&ra("app1", &[("nope", "/x")]), &a, &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("nope"), "{e}");
        let e = app_mounts(&ra("app1", &[("logs", "rel")]), &a, &[host("logs", None)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("absolute"), "{e}");
    }

    #[test]
    fn unused_volumes_are_ignored() {
        let m = app_mounts(&ra("app1", &[]), &app(&[]), &[host("unused", None)]).unwrap();
        assert!(m.is_empty());
    }
}
