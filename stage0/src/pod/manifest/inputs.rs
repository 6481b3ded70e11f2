//! Turning a `run`/`prepare` request into the pod manifest: volumes, the apps' images, the
//! pod-wide environment and ports; or loading an operator's `--pod-manifest`.
use std::path::Path;

use aci::schema::{ExposedPort, GoSlice, PodManifest, Volume};
use anyhow::{anyhow, bail, Context, Result};
use store::{ImageKey, Store};

use super::{generate, EnvLayers, PodInputs, ResolvedApp};
use crate::cli::requests::PodRequest;
use crate::globals::Globals;
use crate::image::Fetcher;
use crate::output::ExitStatus;

/// The pod manifest for `req`, fetching its images as the pull policy allows.
pub fn from_request(req: &PodRequest, fetcher: &Fetcher<'_>) -> Result<PodManifest> {
    let volumes = req
        .volumes
        .iter()
        .map(|v| {
            Volume::from_flag(v).map_err(|e| anyhow!("invalid value in --volume flag {v:?}: {e}"))
        })
        .collect::<Result<Vec<_>>>()?;
    for (i, v) in volumes.iter().enumerate() {
        if volumes[..i].iter().any(|o| o.name == v.name) {
            bail!(
                "duplicate volume name {:?}: every --volume needs its own name",
                v.name
            );
        }
    }
    for m in req
        .mounts
        .iter()
        .chain(req.apps.iter().flat_map(|a| a.mounts.iter()))
    {
        if !volumes.iter().any(|v| v.name == m.volume) {
            return Err(anyhow!(
                "dangling mount point {:?}: volume {:?} not found",
                m.target,
                m.volume
            ))
            .context("error parsing app image arguments");
        }
    }
    let mut resolved = Vec::new();
    for app in &req.apps {
        let key = fetcher.fetch(&app.image, app.signature.as_deref())?;
        let manifest = fetcher.store.manifest(&key)?;
        resolved.push(ResolvedApp {
            request: app,
            key,
            manifest,
        });
    }
    let inputs = PodInputs {
        volumes,
        mounts: req.mounts.clone(),
        env: env_layers(req)?,
        allow_image_caps: fetcher.globals.insecure.skip_capabilities(),
    };
    let caller = (
        nix::unistd::getuid().as_raw(),
        nix::unistd::getgid().as_raw(),
    );
    let ports = exposed_ports(&req.ports, &resolved)?;
    let mut pm = generate(&resolved, &inputs, caller)?;
    pm.ports = GoSlice::list(ports);
    Ok(pm)
}

/// `--set-env-file` lines: `KEY=VALUE`, `#` and `;` comments, no key twice. A value in matching
/// quotes loses them, as rkt's apps saw it (systemd's environment files strip them).
fn env_file(file: &str) -> Result<Vec<(String, String)>> {
    let content = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read --set-env-file {file}"))?;
    let mut out: Vec<(String, String)> = Vec::new();
    for line in content.lines() {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .filter(|(k, _)| !k.is_empty())
            .ok_or_else(|| {
                anyhow!("environment variable must be specified as name=value (file {file:?})")
            })?;
        if out.iter().any(|(e, _)| e == k) {
            bail!("environment variable {k:?} already set (file {file:?})");
        }
        out.push((k.to_string(), unquote(v).to_string()));
    }
    Ok(out)
}

fn unquote(v: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = v.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            return inner;
        }
    }
    v
}

/// The pod-wide environment layers of `req`.
fn env_layers(req: &PodRequest) -> Result<EnvLayers> {
    let inherited = if req.inherit_env {
        std::env::vars().collect()
    } else {
        Vec::new()
    };
    let mut from_file: Vec<(String, String)> = Vec::new();
    for file in &req.set_env_file {
        for (k, v) in env_file(file)? {
            if from_file.iter().any(|(e, _)| *e == k) {
                bail!("environment variable {k:?} already set (file {file:?})");
            }
            from_file.push((k, v));
        }
    }
    let mut explicit: Vec<(String, String)> = Vec::new();
    for kv in &req.set_env {
        let (k, v) = kv
            .split_once('=')
            .filter(|(k, _)| !k.is_empty())
            .ok_or_else(|| anyhow!("invalid --set-env {kv:?}: must be specified as key=value"))?;
        if explicit.iter().any(|(e, _)| e == k) {
            bail!("invalid --set-env {kv:?}: key {k:?} already set");
        }
        explicit.push((k.to_string(), v.to_string()));
    }
    Ok(EnvLayers {
        inherited,
        from_file,
        explicit,
    })
}

/// `--port NAME:[HOSTIP:]HOSTPORT`, checked against the apps' ports.
fn exposed_ports(values: &[String], apps: &[ResolvedApp<'_>]) -> Result<Vec<ExposedPort>> {
    let mut out: Vec<ExposedPort> = Vec::new();
    for v in values {
        let parts: Vec<&str> = v.split(':').collect();
        let (name, ip, port) = match parts.as_slice() {
            [name, port] => (*name, None, *port),
            [name, ip, port] => (*name, Some(*ip), *port),
            _ => bail!("{v:?} is not in name:[ip:]port format"),
        };
        if !aci::validate::is_ac_name(name) {
            bail!("{name:?} is not a valid port name");
        }
        if let Some(ip) = ip {
            if ip.parse::<std::net::IpAddr>().is_err() {
                bail!("{ip:?} is not a valid IP");
            }
        }
        let host_port: u32 = port
            .parse()
            .ok()
            .filter(|p| (1..=65535).contains(p))
            .ok_or_else(|| anyhow!("{port:?} is not a valid port number"))?;
        let owners: Vec<&str> = apps
            .iter()
            .filter(|a| {
                a.manifest
                    .app
                    .as_ref()
                    .is_some_and(|app| app.ports.iter().any(|p| p.name == name))
            })
            .map(|a| a.manifest.name.as_str())
            .collect();
        match owners.len() {
            0 => bail!("port name {name:?} is not defined by any app image"),
            1 => {}
            _ => bail!(
                "port name {name:?} is defined by several apps ({}): it must be unique",
                owners.join(", ")
            ),
        }
        if out
            .iter()
            .any(|p| p.host_port == host_port && p.host_ip.as_deref() == ip)
        {
            bail!("duplicate host port {host_port} in --port {v:?}");
        }
        out.push(ExposedPort {
            name: name.to_string(),
            host_port,
            host_ip: ip.map(str::to_string),
            pod_port: None,
        });
    }
    Ok(out)
}

/// `--pod-manifest`: every app's image must already be in the store (nothing is fetched). An
/// app with its own `app` section was written by the operator and is trusted; one without
/// runs the image's app, whose capabilities are checked as for `rkt run IMAGE`.
pub fn load_pod_manifest(store: &Store, path: &Path, globals: &Globals) -> Result<PodManifest> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read pod manifest {}", path.display()))?;
    let mut pm = PodManifest::from_slice(&bytes)
        .with_context(|| format!("invalid pod manifest {}", path.display()))?;
    if pm.apps.is_empty() {
        bail!(
            "pod must contain at least one application (pod manifest {})",
            path.display()
        );
    }
    let mut names = Vec::new();
    for app in &mut pm.apps {
        if names.contains(&app.name) {
            bail!("multiple apps with same name {}", app.name);
        }
        names.push(app.name.clone());
        if app.image.id.is_empty() {
            bail!("no image ID for app {:?}", app.name);
        }
        let key: ImageKey = store.resolve_id(&app.image.id).with_context(|| {
            format!(
                "app {:?}: image {} must be in the store (fetch it first)",
                app.name, app.image.id
            )
        })?;
        app.image.id = key.to_string();
        if app.app.is_none() {
            let image = store.manifest(&key)?;
            let Some(image_app) = &image.app else {
                bail!(
                    "no app section in the pod manifest or the image manifest (app {:?})",
                    app.name
                );
            };
            if !globals.insecure.skip_capabilities() {
                super::check_image_caps(
                    &image.name,
                    &image_app.isolators,
                    super::CapsGrant::PodManifest,
                )?;
            }
        }
    }
    Ok(pm)
}

/// Every app's mounts must resolve to a volume, and host volume sources must exist: caught
/// here, before any pod directory or mount exists.
pub fn check_volumes(store: &Store, pm: &PodManifest) -> Result<()> {
    for ra in &pm.apps {
        let image_app;
        let app = match &ra.app {
            Some(a) => a,
            None => {
                let key = ImageKey::parse(&ra.image.id)?;
                image_app = store.manifest(&key)?.app.unwrap_or_default();
                &image_app
            }
        };
        let mounts = aci::schema::app_mounts(ra, app, &pm.volumes)?;
        for m in mounts.iter().filter(|m| m.volume.kind == "host") {
            let source = m.volume.source.as_deref().unwrap_or_default();
            if std::fs::metadata(source).is_err() {
                // rkt fails in stage1 here and exits 1 (docs/cli.md, "Output and exit codes").
                return Err(ExitStatus {
                    code: 1,
                    message: format!(
                        "volume {:?}: host source {source:?} does not exist (create it or fix --volume)",
                        m.volume.name
                    ),
                }
                .into());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_files_strip_matching_quotes_and_refuse_bad_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("env");
        std::fs::write(
            &path,
            "# comment\n; also\nA=1\nB=\"quoted value\"\nC='single'\nD=\"half\n\n",
        )
        .unwrap();
        let vars = env_file(path.to_str().unwrap()).unwrap();
        assert_eq!(
            vars,
            [
                ("A".to_string(), "1".to_string()),
                ("B".into(), "quoted value".into()),
                ("C".into(), "single".into()),
                ("D".into(), "\"half".into())
            ]
        );
        std::fs::write(&path, "A=1\nA=2\n").unwrap();
        assert!(env_file(path.to_str().unwrap())
            .unwrap_err()
            .to_string()
            .contains("already set"));
        std::fs::write(&path, "=x\n").unwrap();
        assert!(env_file(path.to_str().unwrap()).is_err());
    }
}
