//! The image config of a Docker image mapped to an appc image manifest, as docker2aci does for
//! rkt: exec = Entrypoint + Cmd, user and group, environment, working directory, mount points
//! for `Volumes`, ports for `ExposedPorts`, labels, and `appc.io/docker/*` annotations (whose
//! presence switches on Docker volume semantics in rkt).
use std::collections::BTreeMap;

use aci::schema::{Annotation, App, EnvVar, ImageManifest, Label, MountPoint, Port};
use serde::Deserialize;

use super::{DockerError, DockerRef};

#[derive(Debug, Default, Deserialize)]
struct ImageConfig {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
    #[serde(default)]
    created: Option<String>,
    #[serde(default)]
    config: Option<ContainerConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ContainerConfig {
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    env: Option<Vec<String>>,
    #[serde(default)]
    entrypoint: Option<Vec<String>>,
    #[serde(default)]
    cmd: Option<Vec<String>>,
    #[serde(default)]
    working_dir: Option<String>,
    #[serde(default)]
    exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default)]
    volumes: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
}

/// appc's arch for a Docker architecture.
fn appc_arch(docker: &str) -> String {
    match docker {
        "arm64" => "aarch64".into(),
        "386" => "i386".into(),
        "arm" => "armv7l".into(),
        other => other.to_string(),
    }
}

/// The appc image name of a Docker image: `registry/repository`, sanitised.
pub fn image_name(r: &DockerRef) -> Result<String, DockerError> {
    aci::validate::sanitize_ac_identifier(
        &format!("{}/{}", r.registry, r.repository).replace(':', "-"),
    )
    .ok_or_else(|| DockerError::Invalid {
        what: "image name".into(),
        detail: format!("{}/{}", r.registry, r.repository),
    })
}

pub fn to_manifest(
    r: &DockerRef,
    original: &str,
    config: &[u8],
    config_digest: &str,
    manifest_digest: &str,
) -> Result<ImageManifest, DockerError> {
    let cfg: ImageConfig = serde_json::from_slice(config).map_err(|e| DockerError::Invalid {
        what: "image config".into(),
        detail: e.to_string(),
    })?;
    let c = cfg.config.unwrap_or_default();
    let entrypoint = c.entrypoint.unwrap_or_default();
    let cmd = c.cmd.unwrap_or_default();
    let exec: Vec<String> = entrypoint.iter().chain(cmd.iter()).cloned().collect();
    let (user, group) = match c.user.as_deref().unwrap_or("") {
        "" => ("0".to_string(), "0".to_string()),
        u => match u.split_once(':') {
            Some((user, group)) => (user.to_string(), group.to_string()),
            None => (u.to_string(), u.to_string()),
        },
    };
    let environment = c
        .env
        .unwrap_or_default()
        .into_iter()
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            Some(EnvVar {
                name: k.to_string(),
                value: v.to_string(),
            })
        })
        .collect();
    let mut mount_points: Vec<MountPoint> = Vec::new();
    for path in c.volumes.unwrap_or_default().keys() {
        let base = match aci::validate::sanitize_ac_name(path) {
            Some(p) => format!("volume-{p}"),
            None => "volume".into(),
        };
        let mut name = base.clone();
        let mut n = 1;
        while mount_points.iter().any(|m| m.name == name) {
            name = format!("{base}-{n}");
            n += 1;
        }
        mount_points.push(MountPoint {
            name,
            path: path.clone(),
            read_only: false,
        });
    }
    let mut ports = Vec::new();
    for spec in c.exposed_ports.unwrap_or_default().keys() {
        let (port, proto) = spec.split_once('/').unwrap_or((spec.as_str(), "tcp"));
        let Ok(port) = port.parse::<u32>() else {
            continue;
        };
        ports.push(Port {
            name: format!("{port}-{proto}"),
            protocol: proto.to_string(),
            port,
            count: 1,
            socket_activated: false,
        });
    }
    let app = App {
        exec,
        user,
        group,
        working_directory: c.working_dir.unwrap_or_default(),
        environment,
        mount_points,
        ports,
        user_labels: c.labels.unwrap_or_default(),
        ..App::default()
    };
    let os = if cfg.os.is_empty() {
        "linux".into()
    } else {
        cfg.os
    };
    let arch = if cfg.architecture.is_empty() {
        "amd64".into()
    } else {
        appc_arch(&cfg.architecture)
    };
    let json = |v: &Vec<String>| serde_json::to_string(v).expect("strings serialise");
    let mut annotations = vec![
        ("appc.io/docker/registryurl", r.registry.clone()),
        ("appc.io/docker/repository", r.repository.clone()),
        ("appc.io/docker/imageid", config_digest.to_string()),
        ("appc.io/docker/entrypoint", json(&entrypoint)),
        ("appc.io/docker/cmd", json(&cmd)),
        ("appc.io/docker/manifesthash", manifest_digest.to_string()),
        ("appc.io/docker/originalname", original.to_string()),
    ];
    if let Some(created) = cfg.created {
        annotations.push(("created", created));
    }
    Ok(ImageManifest {
        ac_kind: "ImageManifest".into(),
        ac_version: "0.8.11".into(),
        name: image_name(r)?,
        labels: vec![
            Label {
                name: "version".into(),
                value: r.tag().to_string(),
            },
            Label {
                name: "os".into(),
                value: os,
            },
            Label {
                name: "arch".into(),
                value: arch,
            },
        ],
        app: Some(app),
        annotations: annotations
            .into_iter()
            .map(|(n, v)| Annotation {
                name: n.into(),
                value: v,
            })
            .collect(),
        ..ImageManifest::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_maps_as_docker2aci_does() {
        let r = DockerRef::parse("127.0.0.1:5000/test/web:2.1").unwrap();
        let cfg = br#"{"architecture":"amd64","os":"linux","config":{"User":"1000:50",
            "Env":["PATH=/bin","BROKEN"],"Entrypoint":["/bin/web"],"Cmd":["--port","80"],
            "WorkingDir":"/srv","ExposedPorts":{"80/tcp":{}},"Volumes":{"/data":{}},
            "Labels":{"a":"b"}}}"#;
        let m = to_manifest(
            &r,
            "127.0.0.1:5000/test/web:2.1",
            cfg,
            "sha256:c",
            "sha256:m",
        )
        .unwrap();
        assert_eq!(m.name, "127.0.0.1-5000/test/web");
        assert!(m.validate().is_ok());
        let app = m.app.clone().unwrap();
        assert_eq!(app.exec, vec!["/bin/web", "--port", "80"]);
        assert_eq!((app.user.as_str(), app.group.as_str()), ("1000", "50"));
        assert_eq!(app.environment.len(), 1);
        assert_eq!(app.working_directory, "/srv");
        assert_eq!(app.ports[0].name, "80-tcp");
        assert_eq!(app.mount_points[0].name, "volume-data");
        assert_eq!(app.user_labels["a"], "b");
        assert!(m
            .annotations
            .iter()
            .any(|a| a.name == "appc.io/docker/cmd" && a.value == r#"["--port","80"]"#));
        let only_cmd = br#"{"config":{"Cmd":["/bin/sh"]}}"#;
        let m = to_manifest(&r, "x", only_cmd, "c", "m").unwrap();
        assert_eq!(m.app.unwrap().exec, vec!["/bin/sh"]);
    }
}
