//! The command line, parsed once into an [`Invocation`]: global options and a typed request
//! per subcommand (docs/cli.md).
//!
//! rkt (cobra) parses every flag with the leaf command's flag set, wherever it is written, so
//! `rkt --stage1-path=X run IMAGE` works: [`argv::flags_after_subcommand`] moves flags written
//! before the command path after it. Then exactly one parser reads the arguments: rkt's image
//! list grammar ([`apps`]) for `run`, `prepare` and `fetch`, clap for everything else.
pub mod apps;
mod argv;
pub mod flags;
pub mod help;
pub mod insecure;
pub mod requests;

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use flags::{bool_value, ratio_value, size_value};
pub use insecure::Insecure;
use requests::{FetchRequest, LaunchOptions, RunRequest};

/// Default data directory.
pub const DEFAULT_DIR: &str = "/var/lib/rkt";
pub const DEFAULT_LOCAL_CONFIG: &str = "/etc/rkt";
pub const DEFAULT_SYSTEM_CONFIG: &str = "/usr/lib/rkt";

#[derive(Debug, Parser)]
#[command(
    name = "rkt",
    about = "rkt, the application container runner",
    disable_version_flag = true,
    args_override_self = true,
    subcommand_required = true,
    arg_required_else_help = true
)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: ClapCommand,
}

/// Flags accepted before or after any subcommand (rkt's persistent flags).
#[derive(Debug, Args, Clone, Default)]
pub struct GlobalArgs {
    /// Print out more debug information to stderr
    #[arg(long, global = true, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = bool_value)]
    pub debug: Option<bool>,
    /// rkt data directory [default: /var/lib/rkt]
    #[arg(long, global = true, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Comma-separated list of security features to disable: none, image, tls, ondisk, http, pubkey, capabilities, paths, seccomp, all-fetch, all-run, all
    #[arg(long = "insecure-options", global = true, value_name = "OPTIONS", value_parser = parse_insecure)]
    pub insecure_options: Option<Insecure>,
    /// System configuration directory [default: /usr/lib/rkt]
    #[arg(long = "system-config", global = true, value_name = "DIR")]
    pub system_config: Option<PathBuf>,
    /// Local configuration directory [default: /etc/rkt]
    #[arg(long = "local-config", global = true, value_name = "DIR")]
    pub local_config: Option<PathBuf>,
    /// User configuration directory
    #[arg(long = "user-config", global = true, value_name = "DIR")]
    pub user_config: Option<PathBuf>,
    /// Automatically trust gpg keys fetched from https
    #[arg(long = "trust-keys-from-https", global = true, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = bool_value)]
    pub trust_keys_from_https: Option<bool>,
    /// Largest image accepted, as rendered on disk: bytes, or a number with K, M, G or T (binary units) [default: 16G]
    #[arg(long = "image-size-limit", global = true, value_name = "SIZE", value_parser = size_value)]
    pub image_size_limit: Option<u64>,
    /// Largest ratio of an image's uncompressed to compressed size accepted [default: 256]
    #[arg(long = "image-expansion-limit", global = true, value_name = "RATIO", value_parser = ratio_value)]
    pub image_expansion_limit: Option<u64>,
}

fn parse_insecure(s: &str) -> Result<Insecure, String> {
    Insecure::parse(s).map_err(|e| e.to_string())
}

/// The arguments of a command that uses rkt's image-list grammar; clap never parses them
/// (listed here for `rkt --help` and completion).
#[derive(Debug, Args, Clone)]
pub struct RawArgs {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    args: Vec<String>,
}

#[derive(Debug, Subcommand)]
enum ClapCommand {
    /// Print the version and exit
    Version(VersionArgs),
    /// Fetch image(s) and store them in the local store
    #[command(disable_help_flag = true)]
    Fetch(RawArgs),
    /// Run image(s) in a pod in rkt
    #[command(disable_help_flag = true)]
    Run(RawArgs),
    /// Prepare to run image(s) in a pod in rkt
    #[command(disable_help_flag = true)]
    Prepare(RawArgs),
    /// Run a prepared application pod in rkt
    #[command(name = "run-prepared")]
    RunPrepared(RunPreparedArgs),
    /// List pods
    List(ListArgs),
    /// Check the status of a rkt pod
    Status(StatusArgs),
    /// Enter the namespaces of an app within a rkt pod
    Enter(EnterArgs),
    /// Stop a pod
    Stop(StopArgs),
    /// Remove all files and resources associated with an exited pod
    Rm(RmArgs),
    /// Garbage collect rkt pods no longer in use
    Gc(GcArgs),
    /// Inspect and print the pod manifest
    #[command(name = "cat-manifest")]
    CatManifest(CatManifestArgs),
    /// Export an app from an exited pod to an ACI file
    Export(ExportArgs),
    /// Operate on image(s) in the local store
    #[command(subcommand)]
    Image(ImageCommand),
    /// Print a completion script for a shell (bash or zsh)
    Completion(CompletionArgs),
    /// Trust a key for image verification
    Trust(TrustArgs),
    /// Print configuration for each stage in JSON format
    Config(ConfigArgs),
    /// Run the metadata service, through which apps learn about their pod
    #[command(name = "metadata-service")]
    MetadataService(MetadataServiceArgs),
}

/// `rkt trust [--prefix=PREFIX | --root] [PUBKEY...]`: keys from files or URLs, or discovered
/// at the prefix when none are given.
#[derive(Debug, Args)]
pub struct TrustArgs {
    /// Trust the keys only for images whose names start with this prefix
    #[arg(long, default_value = "")]
    pub prefix: String,
    /// Trust the key for every image (a key file or URL must be given: no discovery)
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = bool_value)]
    pub root: Option<bool>,
    /// Accept the keys without asking to review their fingerprints
    #[arg(long = "skip-fingerprint-review", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = bool_value)]
    pub skip_fingerprint_review: Option<bool>,
    /// Allow plain HTTP for key discovery and downloads
    #[arg(long = "insecure-allow-http", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = bool_value)]
    pub insecure_allow_http: Option<bool>,
    /// Key files or http(s) URLs
    pub keys: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Indent the output [default: true]
    #[arg(long = "pretty-print", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = bool_value)]
    pub pretty_print: Option<bool>,
}

#[derive(Debug, Args)]
pub struct MetadataServiceArgs {
    /// TCP port apps reach the service on
    #[arg(long = "listen-port", default_value_t = 18112)]
    pub listen_port: u16,
}

/// `rkt version` takes no arguments and, as rkt, ignores any it is given.
#[derive(Debug, Args)]
pub struct VersionArgs {
    #[arg(hide = true, trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    ignored: Vec<String>,
}

#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// The shell: bash or zsh
    #[arg(value_parser = ["bash", "zsh"])]
    pub shell: String,
}

#[derive(Debug, Args)]
pub struct RunPreparedArgs {
    /// Networks of the pod, with arguments for each: --net[=NAME[:ARGS][,NAME[:ARGS]...]] [default: default]
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "default")]
    pub net: Option<String>,
    /// Name servers for /etc/resolv.conf; 'host' uses the host's file, 'none' ignores network DNS
    #[arg(long)]
    pub dns: Vec<String>,
    /// Search domains for /etc/resolv.conf
    #[arg(long = "dns-search")]
    pub dns_search: Vec<String>,
    /// Options for /etc/resolv.conf
    #[arg(long = "dns-opt")]
    pub dns_opt: Vec<String>,
    /// Domain for /etc/resolv.conf
    #[arg(long = "dns-domain")]
    pub dns_domain: Option<String>,
    /// Entries for the pod's /etc/hosts: IP=HOST[,IP=HOST]; 'host' uses the host's file
    #[arg(long = "hosts-entry")]
    pub hosts_entry: Vec<String>,
    /// Run the pod's single app on the terminal, interactively
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = bool_value)]
    pub interactive: Option<bool>,
    /// Register the pod with the metadata service
    #[arg(long = "mds-register", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = bool_value)]
    pub mds_register: Option<bool>,
    /// The pod's hostname (default rkt-<UUID>)
    #[arg(long)]
    pub hostname: Option<String>,
    /// IPC namespace: auto, private or parent (the host's)
    #[arg(long)]
    pub ipc: Option<String>,
    pub uuid: Option<String>,
}

impl RunPreparedArgs {
    /// The options `run` shares.
    pub fn launch(&self) -> LaunchOptions {
        LaunchOptions {
            net: self.net.clone(),
            dns: self.dns.clone(),
            dns_search: self.dns_search.clone(),
            dns_opt: self.dns_opt.clone(),
            dns_domain: self.dns_domain.clone(),
            hosts_entries: self.hosts_entry.clone(),
            interactive: self.interactive.unwrap_or(false),
            mds_register: self.mds_register.unwrap_or(false),
            hostname: self.hostname.clone(),
            ipc: self.ipc.clone(),
        }
    }
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Use the long output format: full UUIDs and image IDs, absolute times
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = bool_value)]
    pub full: Option<bool>,
    /// Leave out the header line
    #[arg(long = "no-legend", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = bool_value)]
    pub no_legend: Option<bool>,
    /// Output format: json or json-pretty (default: a table)
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Wait until the pod exits: true, or at most this long (e.g. 10s) [default: false]
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub wait: Option<String>,
    /// Wait until the pod is ready: true, or at most this long [default: false]
    #[arg(long = "wait-ready", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub wait_ready: Option<String>,
    /// Output format: json or json-pretty (default: key=value lines)
    #[arg(long)]
    pub format: Option<String>,
    /// Read the pod UUID from this file instead of an argument
    #[arg(long = "uuid-file")]
    pub uuid_file: Option<PathBuf>,
    pub uuid: Option<String>,
}

#[derive(Debug, Args)]
pub struct EnterArgs {
    /// Name of the app to enter within the specified pod
    #[arg(long)]
    pub app: Option<String>,
    /// Checked by the command, after the root check (as rkt)
    pub uuid: Option<String>,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    /// Stop at once (SIGKILL) instead of asking the apps to exit
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = bool_value)]
    pub force: Option<bool>,
    /// Read the pod UUID from this file instead of an argument
    #[arg(long = "uuid-file")]
    pub uuid_file: Option<PathBuf>,
    pub uuids: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Read the pod UUID from this file instead of an argument
    #[arg(long = "uuid-file")]
    pub uuid_file: Option<PathBuf>,
    pub uuids: Vec<String>,
}

#[derive(Debug, Args)]
pub struct GcArgs {
    /// How long an exited pod stays before it is removed
    #[arg(long = "grace-period", default_value = "30m")]
    pub grace_period: String,
    /// How long a prepared pod may wait to run before it is removed
    #[arg(long = "expire-prepared", default_value = "24h")]
    pub expire_prepared: String,
    /// Only move exited and aborted pods to garbage (marking their exit time), remove nothing
    #[arg(long = "mark-only", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = bool_value)]
    pub mark_only: Option<bool>,
}

#[derive(Debug, Args)]
pub struct CatManifestArgs {
    /// Indent the output [default: true]
    #[arg(long = "pretty-print", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = bool_value)]
    pub pretty_print: Option<bool>,
    /// Read the pod UUID from this file instead of an argument
    #[arg(long = "uuid-file")]
    pub uuid_file: Option<PathBuf>,
    pub uuid: Option<String>,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Name of the app to export from the pod
    #[arg(long)]
    pub app: Option<String>,
    /// Replace the output file if it exists
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = bool_value)]
    pub overwrite: Option<bool>,
    pub uuid: String,
    pub output: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// List images in the local store
    List(ImageListArgs),
    /// Remove one or more images with the given IDs or image names from the local store
    Rm(ImageRmArgs),
    /// Garbage collect local store
    Gc(ImageGcArgs),
    /// Export a stored image to an ACI file
    Export(ImageExportArgs),
    /// Extract a stored image to a directory
    Extract(ImageExtractArgs),
    /// Render a stored image to a directory with all its dependencies
    Render(ImageExtractArgs),
    /// Inspect and print the image manifest
    #[command(name = "cat-manifest")]
    CatManifest(ImageCatManifestArgs),
    /// Verify one or more rendered images in the local store
    Verify(ImageVerifyArgs),
    /// Fetch image(s) and store them in the local store (as `rkt fetch`)
    #[command(hide = true, disable_help_flag = true)]
    Fetch(RawArgs),
}

#[derive(Debug, Args)]
pub struct ImageListArgs {
    /// Comma-separated fields to show: id, name, importtime, lastused, size, latest
    #[arg(long)]
    pub fields: Option<String>,
    /// Comma-separated fields to sort by
    #[arg(long)]
    pub sort: Option<String>,
    /// Sort order: asc or desc
    #[arg(long)]
    pub order: Option<String>,
    /// Leave out the header line
    #[arg(long = "no-legend", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = bool_value)]
    pub no_legend: Option<bool>,
    /// Use the long output format: full IDs, absolute times, sizes in bytes
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = bool_value)]
    pub full: Option<bool>,
    /// Output format: json or json-pretty (default: a table)
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(Debug, Args)]
pub struct ImageRmArgs {
    pub images: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ImageGcArgs {
    /// How long since an image was last used before it is removed
    #[arg(long = "grace-period", default_value = "24h")]
    pub grace_period: String,
}

#[derive(Debug, Args)]
pub struct ImageExportArgs {
    /// Replace the output file if it exists
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = bool_value)]
    pub overwrite: Option<bool>,
    pub image: String,
    pub output: PathBuf,
}

#[derive(Debug, Args)]
pub struct ImageExtractArgs {
    /// Only the root filesystem, without the manifest
    #[arg(long = "rootfs-only", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = bool_value)]
    pub rootfs_only: Option<bool>,
    /// Replace the output directory if it exists
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = bool_value)]
    pub overwrite: Option<bool>,
    pub image: String,
    pub output: PathBuf,
}

#[derive(Debug, Args)]
pub struct ImageCatManifestArgs {
    /// Indent the output [default: true]
    #[arg(long = "pretty-print", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = bool_value)]
    pub pretty_print: Option<bool>,
    pub image: String,
}

#[derive(Debug, Args)]
pub struct ImageVerifyArgs {
    pub images: Vec<String>,
}

/// A subcommand with its typed request.
#[derive(Debug)]
pub enum Command {
    Version,
    Fetch(FetchRequest),
    Run(RunRequest),
    Prepare(RunRequest),
    RunPrepared(RunPreparedArgs),
    List(ListArgs),
    Status(StatusArgs),
    Enter(EnterArgs),
    Stop(StopArgs),
    Rm(RmArgs),
    Gc(GcArgs),
    CatManifest(CatManifestArgs),
    Export(ExportArgs),
    Image(ImageCommand),
    Completion(CompletionArgs),
    Trust(TrustArgs),
    Config(ConfigArgs),
    MetadataService(MetadataServiceArgs),
}

impl Command {
    /// rkt prefixes stderr lines with the name of the leaf command (`image rm` → `rm`).
    pub fn prefix(&self) -> &'static str {
        match self {
            Command::Version => "version",
            Command::Fetch(_) => "fetch",
            Command::Run(_) => "run",
            Command::Prepare(_) => "prepare",
            Command::RunPrepared(_) => "run-prepared",
            Command::List(_) => "list",
            Command::Status(_) => "status",
            Command::Enter(_) => "enter",
            Command::Stop(_) => "stop",
            Command::Rm(_) => "rm",
            Command::Gc(_) => "gc",
            Command::CatManifest(_) => "cat-manifest",
            Command::Export(_) => "export",
            Command::Completion(_) => "completion",
            Command::Trust(_) => "trust",
            Command::Config(_) => "config",
            Command::MetadataService(_) => "metadata-service",
            Command::Image(i) => match i {
                ImageCommand::List(_) => "list",
                ImageCommand::Rm(_) => "rm",
                ImageCommand::Gc(_) => "gc",
                ImageCommand::Export(_) => "export",
                ImageCommand::Extract(_) => "extract",
                ImageCommand::Render(_) => "render",
                ImageCommand::CatManifest(_) => "cat-manifest",
                ImageCommand::Verify(_) => "verify",
                ImageCommand::Fetch(_) => "fetch",
            },
        }
    }

    /// The commands rkt runs for root only; it says so before looking at their arguments.
    pub fn requires_root(&self) -> bool {
        matches!(
            self,
            Command::Run(_)
                | Command::Prepare(_)
                | Command::RunPrepared(_)
                | Command::Enter(_)
                | Command::Rm(_)
                | Command::Gc(_)
                | Command::MetadataService(_)
        )
    }
}

/// The whole command line: global options and the command.
#[derive(Debug)]
pub struct Invocation {
    pub globals: GlobalArgs,
    pub command: Command,
}

/// Why the command line did not produce an [`Invocation`].
#[derive(Debug)]
pub enum ParseError {
    /// clap's errors, help and version displays.
    Clap(clap::Error),
    /// The image-list grammar refused the arguments of `command`.
    Apps {
        command: apps::AppsCommand,
        error: anyhow::Error,
    },
    /// `--help` of an image-list command: print this and exit 0.
    Help(String),
}

/// Parses the command line (`args[0]` is the program name).
pub fn parse(args: Vec<OsString>) -> Result<Invocation, ParseError> {
    let args = argv::flags_after_subcommand(args);
    let words: Vec<String> = args
        .iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let grammar = match words.first().map(String::as_str) {
        Some("run") => Some((apps::AppsCommand::Run, 1)),
        Some("prepare") => Some((apps::AppsCommand::Prepare, 1)),
        Some("fetch") => Some((apps::AppsCommand::Fetch, 1)),
        Some("image") if words.get(1).map(String::as_str) == Some("fetch") => {
            Some((apps::AppsCommand::Fetch, 2))
        }
        _ => None,
    };
    if let Some((cmd, skip)) = grammar {
        return parse_apps(cmd, &words[skip..]);
    }
    let cli = Cli::try_parse_from(args).map_err(ParseError::Clap)?;
    let command = match cli.command {
        ClapCommand::Version(_) => Command::Version,
        // Intercepted above: the image-list grammar parses these.
        ClapCommand::Fetch(_) | ClapCommand::Run(_) | ClapCommand::Prepare(_) => {
            unreachable!("bug: image-list commands are parsed by cli::apps")
        }
        ClapCommand::Image(ImageCommand::Fetch(_)) => {
            unreachable!("bug: image fetch is parsed by cli::apps")
        }
        ClapCommand::RunPrepared(a) => Command::RunPrepared(a),
        ClapCommand::List(a) => Command::List(a),
        ClapCommand::Status(a) => Command::Status(a),
        ClapCommand::Enter(a) => Command::Enter(a),
        ClapCommand::Stop(a) => Command::Stop(a),
        ClapCommand::Rm(a) => Command::Rm(a),
        ClapCommand::Gc(a) => Command::Gc(a),
        ClapCommand::CatManifest(a) => Command::CatManifest(a),
        ClapCommand::Export(a) => Command::Export(a),
        ClapCommand::Image(i) => Command::Image(i),
        ClapCommand::Completion(a) => Command::Completion(a),
        ClapCommand::Trust(a) => Command::Trust(a),
        ClapCommand::Config(a) => Command::Config(a),
        ClapCommand::MetadataService(a) => Command::MetadataService(a),
    };
    Ok(Invocation {
        globals: cli.global,
        command,
    })
}

fn parse_apps(cmd: apps::AppsCommand, args: &[String]) -> Result<Invocation, ParseError> {
    let apps_error = |error| ParseError::Apps {
        command: cmd,
        error,
    };
    let (globals, command, help) = match cmd {
        apps::AppsCommand::Fetch => {
            let parsed = apps::parse_fetch(args).map_err(apps_error)?;
            (parsed.globals, Command::Fetch(parsed.request), parsed.help)
        }
        apps::AppsCommand::Run | apps::AppsCommand::Prepare => {
            let parsed = apps::parse_run(cmd, args).map_err(apps_error)?;
            let command = if cmd == apps::AppsCommand::Run {
                Command::Run(parsed.request)
            } else {
                Command::Prepare(parsed.request)
            };
            (parsed.globals, command, parsed.help)
        }
    };
    if help {
        return Err(ParseError::Help(help::apps_help(cmd)));
    }
    Ok(Invocation { globals, command })
}

/// The clap command tree, with the image-list commands' flags filled in from their table
/// (for `--help` listings and completion scripts).
pub fn command_tree() -> clap::Command {
    use clap::CommandFactory;
    help::with_apps_flags(Cli::command())
}
