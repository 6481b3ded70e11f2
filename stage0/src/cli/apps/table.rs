//! The flags of `run`, `prepare` and `fetch`: one row each, with the commands that take it,
//! how it takes a value, its help text (rkt's meaning and defaults, in our words) and whether
//! help lists it.
use super::AppsCommand;

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

pub(super) const RUN: u8 = 1;
pub(super) const PREPARE: u8 = 2;
pub(super) const FETCH: u8 = 4;
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
    pub(super) commands: u8,
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
