//! rkt's image-list grammar for `run`, `prepare` and `fetch`, parsed once into typed requests
//! (docs/cli.md):
//!
//! ```text
//! [flags] IMAGE [flags] [-- ARGS... [---]] IMAGE ...
//! ```
//!
//! At each position flags are parsed with the command's whole flag set (global, pod-level and
//! per-app flags) until a non-flag, which is an image and starts a new app. Per-app flags bind
//! to the most recent image; `--mount` before any image applies to every app; `--` opens the
//! image's arguments and `---` closes them (one `--` list per image). Flags follow pflag: a
//! boolean takes `--flag` or `--flag=BOOL` only; other flags take `--flag=V` or `--flag V`.
//!
//! Every flag is a [`Flag`] variant: the table below gives its spelling, and [`apply`] the
//! request field it sets, so a flag the table knows but nothing reads cannot compile.
use anyhow::{anyhow, bail, Result};

use super::flags::{parse_bool, parse_ratio, parse_size};
use super::requests::{AppRequest, FetchRequest, MountArg, RunRequest};
use super::{GlobalArgs, Insecure};
use crate::stage1::Stage1Source;

/// Which command's flag set is in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppsCommand {
    Run,
    Prepare,
    Fetch,
}

impl AppsCommand {
    fn mask(self) -> u8 {
        match self {
            AppsCommand::Run => RUN,
            AppsCommand::Prepare => PREPARE,
            AppsCommand::Fetch => FETCH,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            AppsCommand::Run => "run",
            AppsCommand::Prepare => "prepare",
            AppsCommand::Fetch => "fetch",
        }
    }
}

/// How a flag takes its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `--flag` means true; a value only with `=`.
    Bool,
    /// Needs a value.
    Value,
    /// `--flag` alone means this value; a value only with `=` (pflag's NoOptDefVal).
    OptionalValue(&'static str),
}

const RUN: u8 = 1;
const PREPARE: u8 = 2;
const FETCH: u8 = 4;
const RP: u8 = RUN | PREPARE;
const ALL: u8 = RUN | PREPARE | FETCH;

/// Every flag of `run`, `prepare` and `fetch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    // global
    Debug,
    Dir,
    InsecureOptions,
    SystemConfig,
    LocalConfig,
    UserConfig,
    TrustKeysFromHttps,
    ImageSizeLimit,
    ImageExpansionLimit,
    Help,
    // pod level
    Stage1Url,
    Stage1Path,
    Stage1Name,
    Stage1Hash,
    Stage1FromDir,
    Port,
    Net,
    InheritEnv,
    NoOverlay,
    PrivateUsers,
    SetEnv,
    SetEnvFile,
    Interactive,
    Dns,
    DnsSearch,
    DnsOpt,
    DnsDomain,
    HostsEntry,
    StoreOnly,
    NoStore,
    PullPolicy,
    PodManifest,
    MdsRegister,
    UuidFileSave,
    Hostname,
    Volume,
    Ipc,
    Quiet,
    Full,
    // per app (`Mount` also pod-wide before the first image)
    Signature,
    Exec,
    WorkingDir,
    ReadonlyRootfs,
    Mount,
    User,
    Group,
    SupplementaryGids,
    Name,
    Annotation,
    UserAnnotation,
    UserLabel,
    Environment,
    Memory,
    Cpu,
    CpuShares,
    CapsRetain,
    CapsRemove,
    CapRetain,
    CapRemove,
    Seccomp,
    OomScoreAdj,
    Stdin,
    Stdout,
    Stderr,
}

/// A flag's spelling, value kind, commands, and help (rkt's meaning and defaults, in our
/// words).
pub struct FlagDef {
    pub name: &'static str,
    pub flag: Flag,
    pub kind: Kind,
    commands: u8,
    pub help: &'static str,
    /// Shown in help as `(default ...)`.
    pub default: Option<&'static str>,
    /// Accepted but not listed (rkt hides them too).
    pub hidden: bool,
}

const fn def(
    name: &'static str,
    flag: Flag,
    kind: Kind,
    commands: u8,
    help: &'static str,
) -> FlagDef {
    FlagDef {
        name,
        flag,
        kind,
        commands,
        help,
        default: None,
        hidden: false,
    }
}

const fn with_default(mut d: FlagDef, default: &'static str) -> FlagDef {
    d.default = Some(default);
    d
}

const fn hidden(mut d: FlagDef) -> FlagDef {
    d.hidden = true;
    d
}

use Kind::{Bool, OptionalValue, Value};

/// rkt 1.30's flags for these commands, with ours (the image limits) added.
pub const FLAGS: &[FlagDef] = &[
    def("debug", Flag::Debug, Bool, ALL, "print debugging information on stderr"),
    with_default(def("dir", Flag::Dir, Value, ALL, "rkt's data directory"), "/var/lib/rkt"),
    with_default(
        def("insecure-options", Flag::InsecureOptions, Value, ALL, "security checks to skip, comma-separated: none, image, tls, ondisk, http, pubkey, capabilities, paths, seccomp, all-fetch, all-run, all"),
        "none",
    ),
    with_default(def("system-config", Flag::SystemConfig, Value, ALL, "system configuration directory"), "/usr/lib/rkt"),
    with_default(def("local-config", Flag::LocalConfig, Value, ALL, "local configuration directory"), "/etc/rkt"),
    def("user-config", Flag::UserConfig, Value, ALL, "user configuration directory"),
    def("trust-keys-from-https", Flag::TrustKeysFromHttps, Bool, ALL, "trust signing keys fetched over https automatically"),
    with_default(def("image-size-limit", Flag::ImageSizeLimit, Value, ALL, "largest image accepted, as rendered on disk (bytes, or K, M, G, T)"), "16G"),
    with_default(def("image-expansion-limit", Flag::ImageExpansionLimit, Value, ALL, "largest ratio of an image's uncompressed to compressed size accepted"), "256"),
    def("help", Flag::Help, Bool, ALL, "help for this command"),
    // pod level
    def("stage1-url", Flag::Stage1Url, Value, RP, "URL of the stage1 image to use (file://, http(s):// or docker://)"),
    def("stage1-path", Flag::Stage1Path, Value, RP, "path of the stage1 image file to use"),
    def("stage1-name", Flag::Stage1Name, Value, RP, "name of the stage1 image to use, from the store or discovered"),
    def("stage1-hash", Flag::Stage1Hash, Value, RP, "ID of a stage1 image in the store to use"),
    def("stage1-from-dir", Flag::Stage1FromDir, Value, RP, "file name of a stage1 image in the stage1 images directory"),
    def("port", Flag::Port, Value, RP, "expose a port on the host (needs a contained network): NAME:[HOSTIP:]HOSTPORT"),
    with_default(def("net", Flag::Net, OptionalValue("default"), RUN, "networks of the pod, with arguments for each: --net[=NAME[:ARGS][,NAME[:ARGS]...]]"), "default"),
    def("inherit-env", Flag::InheritEnv, Bool, RP, "give the apps every environment variable of rkt's that they do not set"),
    def("no-overlay", Flag::NoOverlay, Bool, RP, "copy images into the pod instead of using overlay mounts"),
    def("private-users", Flag::PrivateUsers, Bool, RP, "run the pod in a user namespace"),
    def("set-env", Flag::SetEnv, Value, RP, "set a variable for every app: KEY=VALUE (an app's --environment wins)"),
    def("set-env-file", Flag::SetEnvFile, Value, RP, "file of KEY=VALUE lines to set for every app"),
    def("interactive", Flag::Interactive, Bool, RUN, "run the pod's single app on the terminal, interactively"),
    def("dns", Flag::Dns, Value, RUN, "name servers for /etc/resolv.conf; 'host' uses the host's file, 'none' ignores network DNS"),
    def("dns-search", Flag::DnsSearch, Value, RUN, "search domains for /etc/resolv.conf"),
    def("dns-opt", Flag::DnsOpt, Value, RUN, "options for /etc/resolv.conf"),
    def("dns-domain", Flag::DnsDomain, Value, RUN, "domain for /etc/resolv.conf"),
    def("hosts-entry", Flag::HostsEntry, Value, RUN, "entries for the pod's /etc/hosts: IP=HOST[,IP=HOST]; 'host' uses the host's file"),
    hidden(def("store-only", Flag::StoreOnly, Bool, ALL, "use only images already in the store (deprecated: --pull-policy=never)")),
    hidden(def("no-store", Flag::NoStore, Bool, ALL, "fetch images even if the store has them (deprecated: --pull-policy=update)")),
    with_default(def("pull-policy", Flag::PullPolicy, Value, ALL, "when to fetch an image: new (only if missing), update (always) or never"), "new"),
    def("pod-manifest", Flag::PodManifest, Value, RP, "run the pod described by this pod manifest file instead of images and flags"),
    def("mds-register", Flag::MdsRegister, Bool, RUN, "register the pod with the metadata service (needs a network that reaches the host)"),
    def("uuid-file-save", Flag::UuidFileSave, Value, RUN, "write the pod's UUID to this file"),
    def("hostname", Flag::Hostname, Value, RUN, "the pod's hostname (default rkt-<UUID>)"),
    def("volume", Flag::Volume, Value, RP, "a volume for the pod: NAME,kind=host,source=PATH[,readOnly=BOOL][,recursive=BOOL] or NAME,kind=empty[,mode=M][,uid=N][,gid=N]"),
    def("ipc", Flag::Ipc, Value, RUN, "IPC namespace: auto, private or parent (the host's)"),
    def("quiet", Flag::Quiet, Bool, PREPARE, "print nothing but the UUID on success"),
    def("full", Flag::Full, Bool, FETCH, "print full image IDs"),
    // per app
    def("signature", Flag::Signature, Value, ALL, "signature file of the preceding image"),
    def("exec", Flag::Exec, Value, RP, "command to run instead of the preceding image's"),
    def("working-dir", Flag::WorkingDir, Value, RP, "working directory of the preceding image's app"),
    def("readonly-rootfs", Flag::ReadonlyRootfs, Value, RP, "mount the preceding image's root filesystem read-only"),
    def("mount", Flag::Mount, Value, RP, "mount a volume in the preceding app (or, before any image, in every app): volume=NAME,target=PATH"),
    def("user", Flag::User, Value, RP, "user of the preceding image's app (name or number)"),
    def("group", Flag::Group, Value, RP, "group of the preceding image's app (name or number)"),
    def("supplementary-gids", Flag::SupplementaryGids, Value, RP, "supplementary group IDs of the preceding image's app, comma-separated"),
    def("name", Flag::Name, Value, RP, "name of the preceding image's app (default: from the image name)"),
    def("annotation", Flag::Annotation, Value, RP, "an annotation of the preceding app: NAME=VALUE"),
    def("user-annotation", Flag::UserAnnotation, Value, RP, "a user annotation of the preceding app: NAME=VALUE"),
    def("user-label", Flag::UserLabel, Value, RP, "a user label of the preceding app: NAME=VALUE"),
    def("environment", Flag::Environment, Value, RP, "a variable of the preceding app: KEY=VALUE"),
    def("memory", Flag::Memory, Value, RP, "memory limit of the preceding app, e.g. 128M or 1Gi"),
    def("cpu", Flag::Cpu, Value, RP, "CPU limit of the preceding app, e.g. 500m"),
    def("cpu-shares", Flag::CpuShares, Value, RP, "CPU time share weight of the preceding app, e.g. 2048"),
    def("caps-retain", Flag::CapsRetain, Value, RP, "the only capabilities the preceding app keeps, comma-separated"),
    def("caps-remove", Flag::CapsRemove, Value, RP, "capabilities the preceding app loses, comma-separated"),
    hidden(def("cap-retain", Flag::CapRetain, Value, RP, "deprecated spelling of --caps-retain")),
    hidden(def("cap-remove", Flag::CapRemove, Value, RP, "deprecated spelling of --caps-remove")),
    def("seccomp", Flag::Seccomp, Value, RP, "system call filter of the preceding app: mode=retain|remove[,errno=E],SYSCALL..."),
    def("oom-score-adj", Flag::OomScoreAdj, Value, RP, "OOM score adjustment of the preceding app"),
    hidden(def("stdin", Flag::Stdin, Value, RUN, "stdin mode of the preceding app (experimental app sandbox)")),
    hidden(def("stdout", Flag::Stdout, Value, RUN, "stdout mode of the preceding app (experimental app sandbox)")),
    hidden(def("stderr", Flag::Stderr, Value, RUN, "stderr mode of the preceding app (experimental app sandbox)")),
];

/// The flags `cmd` accepts, in table order.
pub fn flags_of(cmd: AppsCommand) -> impl Iterator<Item = &'static FlagDef> {
    FLAGS.iter().filter(move |d| d.commands & cmd.mask() != 0)
}

/// What the grammar produced: global flags and the command's request.
#[derive(Debug, Default)]
pub struct Parsed<R> {
    pub globals: GlobalArgs,
    pub request: R,
    pub help: bool,
}

/// Where parsed flags go: the command's request (run, prepare and fetch share the apps).
trait Target {
    fn apps(&mut self) -> &mut Vec<AppRequest>;
    /// A `--mount` before any image: for every app.
    fn add_pod_mount(&mut self, mount: MountArg);
    fn set(&mut self, flag: Flag, value: String) -> Result<()>;
}

impl Target for RunRequest {
    fn apps(&mut self) -> &mut Vec<AppRequest> {
        &mut self.pod.apps
    }

    fn add_pod_mount(&mut self, mount: MountArg) {
        self.pod.mounts.push(mount);
    }

    fn set(&mut self, flag: Flag, value: String) -> Result<()> {
        let (pod, launch) = (&mut self.pod, &mut self.launch);
        let on = || value == "true";
        match flag {
            Flag::Stage1Url => pod
                .stage1
                .set("stage1-url", Stage1Source::Url(value.clone()))?,
            Flag::Stage1Path => pod
                .stage1
                .set("stage1-path", Stage1Source::Path(value.clone().into()))?,
            Flag::Stage1Name => pod
                .stage1
                .set("stage1-name", Stage1Source::Name(value.clone()))?,
            Flag::Stage1Hash => pod
                .stage1
                .set("stage1-hash", Stage1Source::Hash(value.clone()))?,
            Flag::Stage1FromDir => pod
                .stage1
                .set("stage1-from-dir", Stage1Source::FromDir(value.clone()))?,
            Flag::Port => pod.ports.push(value),
            Flag::InheritEnv => pod.inherit_env = on(),
            Flag::NoOverlay => pod.no_overlay = on(),
            Flag::PrivateUsers => pod.private_users = on(),
            Flag::SetEnv => pod.set_env.push(value),
            Flag::SetEnvFile => pod.set_env_file.push(value),
            Flag::StoreOnly => pod.pull.store_only = Some(on()),
            Flag::NoStore => pod.pull.no_store = Some(on()),
            Flag::PullPolicy => pod.pull.policy = Some(value),
            Flag::PodManifest => pod.pod_manifest = Some(value.into()),
            Flag::Volume => pod.volumes.push(value),
            Flag::Quiet => pod.quiet = on(),
            Flag::Net => launch.net = Some(value),
            Flag::Interactive => launch.interactive = on(),
            Flag::Dns => launch.dns.push(value),
            Flag::DnsSearch => launch.dns_search.push(value),
            Flag::DnsOpt => launch.dns_opt.push(value),
            Flag::DnsDomain => launch.dns_domain = Some(value),
            Flag::HostsEntry => launch.hosts_entries.push(value),
            Flag::MdsRegister => launch.mds_register = on(),
            Flag::Hostname => launch.hostname = Some(value),
            Flag::Ipc => launch.ipc = Some(value),
            Flag::UuidFileSave => self.uuid_file_save = Some(value.into()),
            _ => bail!("bug: --{} reached the pod flags", name_of(flag)),
        }
        Ok(())
    }
}

impl Target for FetchRequest {
    fn apps(&mut self) -> &mut Vec<AppRequest> {
        &mut self.images
    }

    /// `--mount` is not a flag of `fetch`: the table never lets it here.
    fn add_pod_mount(&mut self, _mount: MountArg) {}

    fn set(&mut self, flag: Flag, value: String) -> Result<()> {
        let on = value == "true";
        match flag {
            Flag::StoreOnly => self.pull.store_only = Some(on),
            Flag::NoStore => self.pull.no_store = Some(on),
            Flag::PullPolicy => self.pull.policy = Some(value),
            Flag::Full => self.full = on,
            _ => bail!("bug: --{} reached the fetch flags", name_of(flag)),
        }
        Ok(())
    }
}

fn name_of(flag: Flag) -> &'static str {
    FLAGS
        .iter()
        .find(|d| d.flag == flag)
        .map_or("?", |d| d.name)
}

/// Parses the arguments of `run` or `prepare` (everything after the command path).
pub fn parse_run(cmd: AppsCommand, args: &[String]) -> Result<Parsed<RunRequest>> {
    parse(cmd, args)
}

/// Parses the arguments of `fetch`.
pub fn parse_fetch(args: &[String]) -> Result<Parsed<FetchRequest>> {
    parse(AppsCommand::Fetch, args)
}

fn parse<R: Target + Default>(cmd: AppsCommand, args: &[String]) -> Result<Parsed<R>> {
    let mut out = Parsed::<R>::default();
    let mut in_app_args = false;
    let mut apps_at_last_args = 0usize;
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        if arg.is_empty() {
            continue;
        }
        if in_app_args {
            if arg == "---" {
                in_app_args = false;
            } else if let Some(app) = out.request.apps().last_mut() {
                app.args.push(arg.clone());
            }
            continue;
        }
        match arg.as_str() {
            "--" => {
                if cmd == AppsCommand::Fetch {
                    bail!("app arguments unsupported");
                }
                let apps = out.request.apps().len();
                if apps_at_last_args == apps {
                    if apps == 0 {
                        bail!("an image is required before any app arguments");
                    }
                    bail!("only one set of app arguments allowed per image");
                }
                apps_at_last_args = apps;
                in_app_args = true;
            }
            // Not an image: a stray list terminator.
            "---" => {}
            _ if arg.starts_with('-') && arg.len() > 1 => {
                let (name, inline) = split_flag(arg)?;
                let def = flags_of(cmd)
                    .find(|d| d.name == name)
                    .ok_or_else(|| unknown_flag(arg, name))?;
                let value = match (def.kind, inline) {
                    (Bool, None) => "true".to_string(),
                    (Bool, Some(v)) => parse_bool(&v)
                        .map_err(|_| {
                            anyhow!("invalid argument {v:?} for \"--{name}\" flag: strconv.ParseBool: parsing {v:?}: invalid syntax")
                        })?
                        .to_string(),
                    (OptionalValue(default), None) => default.to_string(),
                    (_, Some(v)) => v,
                    (Value, None) => {
                        let v = args
                            .get(i)
                            .ok_or_else(|| anyhow!("flag needs an argument: --{name}"))?;
                        i += 1;
                        v.clone()
                    }
                };
                apply(&mut out, def.flag, value)?;
            }
            _ => out.request.apps().push(AppRequest::new(arg)),
        }
    }
    Ok(out)
}

fn split_flag(arg: &str) -> Result<(&str, Option<String>)> {
    let body = arg
        .strip_prefix("--")
        .or_else(|| arg.strip_prefix('-'))
        .unwrap_or(arg);
    if arg.starts_with("--") || body == "h" {
        let (name, value) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        return Ok((if name == "h" { "help" } else { name }, value));
    }
    bail!(
        "unknown shorthand flag: '{}' in {arg}",
        body.chars().next().unwrap_or('-')
    )
}

fn unknown_flag(arg: &str, name: &str) -> anyhow::Error {
    if arg.starts_with("--") {
        anyhow!("unknown flag: --{name}")
    } else {
        anyhow!("unknown shorthand flag: '{name}' in {arg}")
    }
}

/// Stores one flag's value where its [`Flag`] says.
fn apply<R: Target>(out: &mut Parsed<R>, flag: Flag, value: String) -> Result<()> {
    let g = &mut out.globals;
    let on = || parse_bool(&value).unwrap_or(false);
    match flag {
        Flag::Debug => g.debug = Some(on()),
        Flag::Dir => g.dir = Some(value.into()),
        Flag::InsecureOptions => g.insecure_options = Some(Insecure::parse(&value)?),
        Flag::SystemConfig => g.system_config = Some(value.into()),
        Flag::LocalConfig => g.local_config = Some(value.into()),
        Flag::UserConfig => g.user_config = Some(value.into()),
        Flag::TrustKeysFromHttps => g.trust_keys_from_https = Some(on()),
        Flag::ImageSizeLimit => g.image_size_limit = Some(parse_size(&value)?),
        Flag::ImageExpansionLimit => g.image_expansion_limit = Some(parse_ratio(&value)?),
        Flag::Help => out.help = on(),
        Flag::Mount => {
            let mount = parse_mount(&value)?;
            match out.request.apps().last_mut() {
                Some(app) => app.mounts.push(mount),
                None => out.request.add_pod_mount(mount),
            }
        }
        Flag::Signature
        | Flag::Exec
        | Flag::WorkingDir
        | Flag::ReadonlyRootfs
        | Flag::User
        | Flag::Group
        | Flag::SupplementaryGids
        | Flag::Name
        | Flag::Annotation
        | Flag::UserAnnotation
        | Flag::UserLabel
        | Flag::Environment
        | Flag::Memory
        | Flag::Cpu
        | Flag::CpuShares
        | Flag::CapsRetain
        | Flag::CapsRemove
        | Flag::CapRetain
        | Flag::CapRemove
        | Flag::Seccomp
        | Flag::OomScoreAdj
        | Flag::Stdin
        | Flag::Stdout
        | Flag::Stderr => {
            let name = name_of(flag);
            let app = out
                .request
                .apps()
                .last_mut()
                .ok_or_else(|| anyhow!("--{name} must follow an image"))?;
            app.set(flag, name, value)?;
        }
        Flag::Stage1Url
        | Flag::Stage1Path
        | Flag::Stage1Name
        | Flag::Stage1Hash
        | Flag::Stage1FromDir
        | Flag::Port
        | Flag::Net
        | Flag::InheritEnv
        | Flag::NoOverlay
        | Flag::PrivateUsers
        | Flag::SetEnv
        | Flag::SetEnvFile
        | Flag::Interactive
        | Flag::Dns
        | Flag::DnsSearch
        | Flag::DnsOpt
        | Flag::DnsDomain
        | Flag::HostsEntry
        | Flag::StoreOnly
        | Flag::NoStore
        | Flag::PullPolicy
        | Flag::PodManifest
        | Flag::MdsRegister
        | Flag::UuidFileSave
        | Flag::Hostname
        | Flag::Volume
        | Flag::Ipc
        | Flag::Quiet
        | Flag::Full => out.request.set(flag, value)?,
    }
    Ok(())
}

impl AppRequest {
    /// Per-app flags (see [`Flag`]).
    fn set(&mut self, flag: Flag, name: &str, value: String) -> Result<()> {
        let once = |slot: &mut Option<String>, value: String| {
            if slot.is_some() {
                bail!("--{name} specified multiple times for the same image");
            }
            *slot = Some(value);
            Ok(())
        };
        match flag {
            Flag::Signature => once(&mut self.signature, value)?,
            Flag::Exec => once(&mut self.exec, value)?,
            Flag::WorkingDir => self.working_dir = Some(value),
            Flag::ReadonlyRootfs => self.readonly_rootfs = Some(value),
            Flag::User => self.user = Some(value),
            Flag::Group => self.group = Some(value),
            Flag::SupplementaryGids => self.supplementary_gids.push(value),
            Flag::Name => self.name = Some(value),
            Flag::Annotation => self.annotations.push(value),
            Flag::UserAnnotation => self.user_annotations.push(value),
            Flag::UserLabel => self.user_labels.push(value),
            Flag::Environment => self.environment.push(value),
            Flag::Memory => self.memory = Some(value),
            Flag::Cpu => self.cpu = Some(value),
            Flag::CpuShares => self.cpu_shares = Some(value),
            // rkt registers the deprecated spellings with the same setter: the later wins.
            Flag::CapsRetain | Flag::CapRetain => self.caps_retain = Some((name.into(), value)),
            Flag::CapsRemove | Flag::CapRemove => self.caps_remove = Some((name.into(), value)),
            Flag::Seccomp => self.seccomp = Some(value),
            Flag::OomScoreAdj => self.oom_score_adj = Some(value),
            Flag::Stdin | Flag::Stdout | Flag::Stderr => bail!(
                "--{name} is part of rkt's experimental app sandbox, which this rkt does not have"
            ),
            _ => bail!("bug: --{name} reached the app flags"),
        }
        Ok(())
    }
}

/// `volume=NAME,target=PATH` (rkt accepts the keys in any order, each once).
pub fn parse_mount(s: &str) -> Result<MountArg> {
    let mut volume = None;
    let mut target = None;
    for part in s.split(',') {
        let (key, value) = part.split_once('=').unwrap_or((part, ""));
        let slot = match key {
            "volume" => &mut volume,
            "target" => &mut target,
            _ => bail!(
                "unknown mount parameter {key:?} in --mount {s:?}: use volume=NAME,target=PATH"
            ),
        };
        if slot.is_some() {
            bail!("--mount {s:?} gives {key} more than once");
        }
        *slot = Some(value.to_string());
    }
    let volume = volume.ok_or_else(|| anyhow!("--mount {s:?} has no volume=NAME"))?;
    if !aci::validate::is_ac_name(&volume) {
        bail!("invalid volume name {volume:?} in --mount flag {s:?}: volume names are lower-case letters, digits and dashes");
    }
    let target = target.ok_or_else(|| anyhow!("--mount {s:?} has no target=PATH"))?;
    if target.is_empty() {
        bail!("--mount {s:?} has an empty target");
    }
    Ok(MountArg { volume, target })
}

#[cfg(test)]
mod tests;
