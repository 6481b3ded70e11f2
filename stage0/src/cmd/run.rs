//! `rkt run` and `rkt prepare`: resolve images, create and prepare the pod, then (run) mount
//! its filesystems and exec stage1 (REFERENCE §1.1).
use std::path::{Path, PathBuf};

use aci::schema::{ExposedPort, PodManifest, Volume};
use anyhow::{anyhow, bail, Context, Result};
use store::{ImageKey, Store, TreeCheck};

use crate::cli::apps::{self, AppsCommand, ParsedApps};
use crate::globals::Globals;
use crate::image::{Fetcher, PullPolicy};
use crate::output::{ExitStatus, Log};
use crate::pod::dns::{self, DnsConfig};
use crate::pod::manifest::{self, CapsGrant, EnvLayers, PodInputs, ResolvedApp};
use crate::pod::prepare::{prepare, PrepareOptions};
use crate::pod::{setup, Pod, Pods, StateDir};
use crate::stage1::{self, Entrypoint, RunFlags, Stage1};
use crate::{contract, sys};

const RUN_USAGE: &str = "Usage: rkt run [--volume=name,kind=host,...] [--mount volume=VOL,target=PATH] IMAGE [-- image-args...[---]]...";
const PREPARE_USAGE: &str =
    "Usage: rkt prepare [--volume=name,kind=host,...] [--quiet] IMAGE [-- image-args...[---]]...";

pub fn run(globals: &mut Globals, args: &[String], log: &Log, prepare_only: bool) -> Result<i32> {
    let cmd = if prepare_only {
        AppsCommand::Prepare
    } else {
        AppsCommand::Run
    };
    let parsed = apps::parse(cmd, args).context("error parsing app image arguments")?;
    globals.merge(&parsed)?;
    log.set_debug(globals.debug);
    if parsed.wants_help() {
        println!(
            "{}",
            if prepare_only {
                PREPARE_USAGE
            } else {
                RUN_USAGE
            }
        );
        return Ok(0);
    }
    if sys::euid() != 0 {
        bail!("cannot run as unprivileged user");
    }
    let policy = super::fetch::pull_policy(&parsed, PullPolicy::New)?;
    validate(&parsed, prepare_only)?;
    warn_deprecated(&parsed, log);
    let net = net_list(parsed.get("net"))?;
    let dns = DnsConfig::parse(
        &parsed.all("dns"),
        &parsed.all("dns-search"),
        &parsed.all("dns-opt"),
        parsed.get("dns-domain"),
        &parsed.all("hosts-entry"),
    )
    .context("error with dns flags")?;
    let hostname = dns::hostname_flag(parsed.get("hostname"))?;

    let store = globals.open_store()?;
    let fetcher = Fetcher {
        store: &store,
        globals,
        policy,
    };
    let stage1_key = stage1::resolve(&fetcher, &stage1::source(&parsed)?)?;
    let pod_manifest = match parsed.get("pod-manifest") {
        Some(path) => load_pod_manifest(&store, Path::new(path), fetcher.globals)?,
        None => generate_manifest(&parsed, &fetcher)?,
    };

    // Everything stage1 would refuse is refused now, before any pod directory exists.
    pod_manifest.validate().context("invalid pod manifest")?;
    if !prepare_only {
        check_volumes(&store, &pod_manifest)?;
    }

    // Opened (and refused if not a regular file) before the pod exists; written right after,
    // before the pod runs, so that a failed run can still be removed by UUID, as in rkt.
    let uuid_file = parsed
        .get("uuid-file-save")
        .map(|path| UuidFile::open(Path::new(path)).context("error saving pod UUID to file"))
        .transpose()?;
    let pods = Pods::new(&globals.dir);
    let mut pod = pods.create().context("error creating new pod")?;
    if let Some(file) = uuid_file {
        file.write(&pod.uuid.to_string())
            .context("error saving pod UUID to file")?;
    }
    let overlay = !parsed.bool("no-overlay") && overlay_supported(&globals.dir, log);
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
    };
    // On failure the pod stays in prepare/, unlocked: an aborted prepare that gc collects.
    prepare(&pod.path(), &store, &opts).context("error setting up stage0")?;
    if prepare_only {
        pod.move_to(StateDir::Prepared)
            .context("error transitioning to prepared")?;
        pod.unlock()?;
        println!("{}", pod.uuid);
        return Ok(0);
    }
    let flags = RunFlags {
        debug: globals.debug,
        net: net.join(","),
        interactive: parsed.bool("interactive"),
        local_config: globals.local_config.clone(),
        hostname,
        dns_conf_mode: Some(dns.conf_mode()),
        disable_capabilities: globals.insecure.skip_capabilities(),
        disable_paths: globals.insecure.skip_paths(),
        disable_seccomp: globals.insecure.skip_seccomp(),
        ipc: parsed.get("ipc").map(str::to_string),
    };
    launch(&mut pod, &store, &pod_manifest, &dns, &flags, log)
}

/// Mounts the pod's filesystems, moves it to `run/` and becomes stage1. Shared with
/// `run-prepared`.
pub fn launch(
    pod: &mut Pod,
    store: &Store,
    manifest: &PodManifest,
    dns: &DnsConfig,
    flags: &RunFlags,
    log: &Log,
) -> Result<i32> {
    let dir = pod.path();
    let guard = setup::mount_overlays(&dir, store, manifest).context("error setting up stage1")?;
    dns.write(&dir.join(contract::STAGE1_ROOTFS))
        .context("error writing name resolution files")?;
    let stage1 = Stage1::of_pod(store, &dir)?;
    let argv = stage1.run_argv(flags, &pod.uuid.to_string(), &|w| {
        log.print(format!("warning: {w}"))
    })?;
    // Loaded and checked before the pod counts as running.
    let program = stage1.program(store, Entrypoint::Run)?;
    pod.move_to(StateDir::Run)
        .context("unable to transition to run")?;
    guard.disarm();
    let dir = pod.path();
    log.debug(format!("Execing {argv:?}"));
    let err = Stage1::exec_run(&program, &dir, &argv, pod.lock_fd());
    Err(err.context("stage0: execution of stage1 failed"))
}

/// rkt's flag-combination checks, in rkt's order.
fn validate(parsed: &ParsedApps, prepare_only: bool) -> Result<()> {
    if parsed.bool("private-users") {
        if !Path::new("/proc/self/uid_map").exists() {
            bail!(
                "--private-users is not supported, kernel compiled without user namespace support"
            );
        }
        bail!("--private-users is not supported by this rkt yet (user namespaces come with the isolation work): run without it");
    }
    let nets: Vec<&str> = parsed
        .get("net")
        .map(|n| n.split(',').collect())
        .unwrap_or_default();
    if !parsed.all("port").is_empty() {
        if nets.contains(&"none") {
            bail!("--port flag does not work with 'none' networking");
        }
        if nets.contains(&"host") {
            bail!("--port flag does not work with 'host' networking");
        }
    }
    if parsed.bool("mds-register") && nets.contains(&"none") {
        bail!("--mds-register flag does not work with --net=none. Please use 'host', 'default' or an equivalent network");
    }
    if parsed.get("pod-manifest").is_some() {
        let policy = parsed.get("pull-policy");
        if !parsed.apps.is_empty()
            || !parsed.all("volume").is_empty()
            || !parsed.mounts.is_empty()
            || !parsed.all("port").is_empty()
            || matches!(policy, Some("never") | Some("update"))
            || parsed.bool("inherit-env")
            || !parsed.all("set-env").is_empty()
            || !parsed.all("set-env-file").is_empty()
        {
            bail!("conflicting flags set with --pod-manifest (see --help)");
        }
    }
    if !prepare_only && parsed.bool("interactive") && parsed.apps.len() > 1 {
        bail!("interactive option only supports one image");
    }
    if parsed.apps.is_empty() && parsed.get("pod-manifest").is_none() {
        bail!("must provide at least one image or specify the pod manifest");
    }
    if parsed.bool("mds-register") {
        bail!("--mds-register: the metadata service is not supported by this rkt yet");
    }
    Ok(())
}

/// `--net` entries: `name[:args]`, unique names, `host`/`none`/`all` without arguments.
/// `--net` entries: `name[:args]`, unique names, `host`/`none`/`all` without arguments. Only
/// the built-in networks exist until CNI networking lands.
pub fn net_list(value: Option<&str>) -> Result<Vec<String>> {
    let Some(value) = value else {
        return Ok(vec!["default".into()]);
    };
    let mut names: Vec<&str> = Vec::new();
    let mut out = Vec::new();
    for item in value.split(',') {
        let (name, args) = match item.split_once(':') {
            Some((n, a)) => (n, Some(a)),
            None => (item, None),
        };
        if name.is_empty() {
            bail!("netname must not be empty");
        }
        if names.contains(&name) {
            bail!("found duplicate netname {name:?}");
        }
        if args.is_some() && matches!(name, "host" | "none" | "all") {
            bail!("arguments are not supported by special netname {name:?}");
        }
        if !matches!(
            name,
            "host" | "none" | "all" | "default" | "default-restricted"
        ) {
            bail!(
                "networks not found: {name} (only default, default-restricted, host and none exist until CNI networks are supported)"
            );
        }
        names.push(name);
        out.push(item.to_string());
    }
    Ok(out)
}

/// `--port NAME:[HOSTIP:]HOSTPORT`, checked against the apps' ports (REFERENCE §6.4).
fn exposed_ports(values: &[&str], apps: &[ResolvedApp<'_>]) -> Result<Vec<ExposedPort>> {
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

fn generate_manifest(parsed: &ParsedApps, fetcher: &Fetcher<'_>) -> Result<PodManifest> {
    let volumes = parsed
        .all("volume")
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
    for m in parsed
        .mounts
        .iter()
        .chain(parsed.apps.iter().flat_map(|a| a.mounts.iter()))
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
    for app in &parsed.apps {
        let key = fetcher.fetch(&app.image, app.get("signature"))?;
        let manifest = fetcher.store.manifest(&key)?;
        resolved.push(ResolvedApp {
            args: app,
            key,
            manifest,
        });
    }
    let inputs = PodInputs {
        volumes,
        mounts: parsed.mounts.clone(),
        env: env_layers(parsed)?,
        allow_image_caps: fetcher.globals.insecure.skip_capabilities(),
    };
    let caller = (
        nix::unistd::getuid().as_raw(),
        nix::unistd::getgid().as_raw(),
    );
    let ports = exposed_ports(&parsed.all("port"), &resolved)?;
    let mut pm = manifest::generate(&resolved, &inputs, caller)?;
    pm.ports = ports;
    Ok(pm)
}

/// Pod-wide environment: `--inherit-env`, then `--set-env-file`, then `--set-env`.
fn env_layers(parsed: &ParsedApps) -> Result<EnvLayers> {
    let inherited = if parsed.bool("inherit-env") {
        std::env::vars().collect()
    } else {
        Vec::new()
    };
    let mut explicit: Vec<(String, String)> = Vec::new();
    for file in parsed.all("set-env-file") {
        let content = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read --set-env-file {file}"))?;
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
            if explicit.iter().any(|(e, _)| e == k) {
                bail!("environment variable {k:?} already set (file {file:?})");
            }
            explicit.push((k.to_string(), v.to_string()));
        }
    }
    let mut from_flags: Vec<(String, String)> = Vec::new();
    for kv in parsed.all("set-env") {
        let (k, v) = kv
            .split_once('=')
            .filter(|(k, _)| !k.is_empty())
            .ok_or_else(|| anyhow!("invalid --set-env {kv:?}: must be specified as key=value"))?;
        if from_flags.iter().any(|(e, _)| e == k) {
            bail!("invalid --set-env {kv:?}: key {k:?} already set");
        }
        from_flags.push((k.to_string(), v.to_string()));
    }
    for (k, v) in from_flags {
        match explicit.iter_mut().find(|(e, _)| *e == k) {
            Some(slot) => slot.1 = v,
            None => explicit.push((k, v)),
        }
    }
    Ok(EnvLayers {
        inherited,
        explicit,
    })
}

/// `--pod-manifest`: every app's image must already be in the store (nothing is fetched). An
/// app with its own `app` section was written by the operator and is trusted; one without
/// runs the image's app, whose capabilities are checked as for `rkt run IMAGE`.
fn load_pod_manifest(store: &Store, path: &Path, globals: &Globals) -> Result<PodManifest> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read pod manifest {}", path.display()))?;
    let mut pm = PodManifest::from_slice(&bytes)
        .with_context(|| format!("invalid pod manifest {}", path.display()))?;
    if pm.apps.is_empty() {
        bail!("pod manifest {} has no apps", path.display());
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
                manifest::check_image_caps(
                    &image.name,
                    &image_app.isolators,
                    CapsGrant::PodManifest,
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
                // rkt fails in stage1 here and exits 1 (REFERENCE §7).
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

/// `--cap-retain`/`--cap-remove` still work, with pflag's deprecation notice.
fn warn_deprecated(parsed: &ParsedApps, log: &Log) {
    for (old, new) in [("cap-retain", "caps-retain"), ("cap-remove", "caps-remove")] {
        if parsed.apps.iter().any(|a| a.get(old).is_some()) {
            log.print(format!(
                "Flag --{old} has been deprecated, use --{new} instead"
            ));
        }
    }
}

/// The `--uuid-file-save` file. Schedulers (Nomad) create it and keep reading it through an
/// fd, so an existing file is written in place, keeping its inode. The path is the caller's
/// but may be in a directory others can write: never follow a symlink planted there, and
/// never write into a fifo or device.
enum UuidFile {
    Existing { path: PathBuf, file: std::fs::File },
    Missing(PathBuf),
}

impl UuidFile {
    fn open(path: &Path) -> Result<UuidFile> {
        match open_regular(path, false) {
            Ok(file) => Ok(UuidFile::Existing {
                path: path.to_path_buf(),
                file,
            }),
            Err(e)
                if e.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::NotFound) =>
            {
                Ok(UuidFile::Missing(path.to_path_buf()))
            }
            Err(e) => Err(e),
        }
    }

    /// Writes the UUID without a newline, as rkt does.
    fn write(self, uuid: &str) -> Result<()> {
        use std::os::unix::fs::FileExt;
        let (path, file) = match self {
            UuidFile::Existing { path, file } => (path, file),
            // O_EXCL: whatever appeared at the path since `open` is refused, not followed.
            UuidFile::Missing(path) => {
                let file = open_regular(&path, true)?;
                (path, file)
            }
        };
        // Content first, then the length: a reader never sees an empty file, and a UUID
        // replacing a UUID is never mixed with the old one.
        file.write_all_at(uuid.as_bytes(), 0)
            .and_then(|()| file.set_len(uuid.len() as u64))
            .with_context(|| format!("cannot write {}", path.display()))
    }
}

/// Opens `path` for writing without following a final symlink and without blocking on a fifo,
/// and checks that it is a regular file.
fn open_regular(path: &Path, create: bool) -> Result<std::fs::File> {
    use nix::fcntl::OFlag;
    use std::os::unix::fs::OpenOptionsExt;
    let refuse = || {
        anyhow!(
            "{} is not a regular file (a symlink, fifo, device or directory): refusing to write the pod UUID there",
            path.display()
        )
    };
    let flags = OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_NOCTTY;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(create)
        .mode(0o644)
        .custom_flags(flags.bits())
        .open(path);
    let file = match file {
        Ok(f) => f,
        // ELOOP: a symlink (O_NOFOLLOW); ENXIO: a fifo without a reader or a socket;
        // EISDIR: a directory.
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::ELOOP | libc::ENXIO | libc::EISDIR)
            ) =>
        {
            return Err(refuse())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            bail!(
                "{} appeared while rkt was creating it: refusing to write the pod UUID there",
                path.display()
            )
        }
        Err(e) => {
            return Err(anyhow::Error::new(e).context(format!("cannot open {}", path.display())))
        }
    };
    let meta = file
        .metadata()
        .with_context(|| format!("cannot stat {}", path.display()))?;
    if !meta.file_type().is_file() {
        return Err(refuse());
    }
    Ok(file)
}

/// Whether overlay mounts can be used for pods under the data directory (REFERENCE §1.1 step 6).
pub fn overlay_supported(data_dir: &Path, log: &Log) -> bool {
    match overlay_problem(data_dir) {
        None => true,
        Some(reason) => {
            log.print(format!("disabling overlay support: {reason:?}"));
            false
        }
    }
}

fn overlay_problem(data_dir: &Path) -> Option<String> {
    let has_overlay = || {
        std::fs::read_to_string("/proc/filesystems")
            .map(|s| {
                s.lines()
                    .any(|l| l.split_whitespace().last() == Some("overlay"))
            })
            .unwrap_or(false)
    };
    if !has_overlay() {
        // Best effort: the module may simply not be loaded yet.
        let _ = std::process::Command::new("modprobe")
            .arg("overlay")
            .status();
        if !has_overlay() {
            return Some("overlay entry not present in /proc/filesystems".into());
        }
    }
    let probe: PathBuf = if data_dir.exists() {
        data_dir.to_path_buf()
    } else {
        PathBuf::from("/")
    };
    match nix::sys::statfs::statfs(&probe) {
        Ok(fs) => {
            let magic = fs.filesystem_type().0;
            const AUFS: i64 = 0x6175_6673;
            const ZFS: i64 = 0x2fc1_2fc1;
            const OVERLAYFS: i64 = 0x794c_7630;
            match magic {
                AUFS => Some("unsupported filesystem: aufs".into()),
                ZFS => Some("unsupported filesystem: zfs".into()),
                OVERLAYFS => {
                    Some("unsupported filesystem: overlay cannot be nested on overlay".into())
                }
                _ => None,
            }
        }
        Err(e) => Some(format!("cannot statfs {}: {e}", probe.display())),
    }
}
