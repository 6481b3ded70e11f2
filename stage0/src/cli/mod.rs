//! The command line: clap for the command tree and ordinary flags, rkt's own grammar
//! ([`apps`]) for the image lists of `run`, `prepare` and `fetch`.
pub mod apps;
pub mod flags;
pub mod insecure;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use flags::{bool_value, ratio_value, size_value};
pub use insecure::Insecure;

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
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags accepted before or after any subcommand (rkt's persistent flags).
#[derive(Debug, Args, Clone, Default)]
pub struct GlobalArgs {
    /// Print out more debug information to stderr
    #[arg(long, global = true, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = bool_value)]
    pub debug: Option<bool>,
    /// rkt data directory
    #[arg(long, global = true, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Comma-separated list of security features to disable: none, image, tls, ondisk, http, pubkey, capabilities, paths, seccomp, all-fetch, all-run, all
    #[arg(long = "insecure-options", global = true, value_name = "OPTIONS", value_parser = parse_insecure)]
    pub insecure_options: Option<Insecure>,
    /// System configuration directory
    #[arg(long = "system-config", global = true, value_name = "DIR")]
    pub system_config: Option<PathBuf>,
    /// Local configuration directory
    #[arg(long = "local-config", global = true, value_name = "DIR")]
    pub local_config: Option<PathBuf>,
    /// User configuration directory
    #[arg(long = "user-config", global = true, value_name = "DIR")]
    pub user_config: Option<PathBuf>,
    /// Automatically trust gpg keys fetched from https
    #[arg(long = "trust-keys-from-https", global = true, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = bool_value)]
    pub trust_keys_from_https: Option<bool>,
    /// Largest total size of an image's files, in bytes or with K, M, G or T (KiB..TiB); default 16G
    #[arg(long = "image-size-limit", global = true, value_name = "SIZE", value_parser = size_value)]
    pub image_size_limit: Option<u64>,
    /// Largest ratio of an image's uncompressed to compressed size (checked past 64 MiB); default 256
    #[arg(long = "image-expansion-limit", global = true, value_name = "RATIO", value_parser = ratio_value)]
    pub image_expansion_limit: Option<u64>,
}

fn parse_insecure(s: &str) -> Result<Insecure, String> {
    Insecure::parse(s).map_err(|e| e.to_string())
}

/// Raw arguments for commands that use rkt's image-list grammar.
#[derive(Debug, Args, Clone)]
pub struct RawArgs {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    pub args: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the version and exit
    Version,
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
}

#[derive(Debug, Args)]
pub struct RunPreparedArgs {
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "default")]
    pub net: Option<String>,
    #[arg(long)]
    pub dns: Vec<String>,
    #[arg(long = "dns-search")]
    pub dns_search: Vec<String>,
    #[arg(long = "dns-opt")]
    pub dns_opt: Vec<String>,
    #[arg(long = "dns-domain")]
    pub dns_domain: Option<String>,
    #[arg(long = "hosts-entry")]
    pub hosts_entry: Vec<String>,
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = bool_value)]
    pub interactive: Option<bool>,
    #[arg(long = "mds-register", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = bool_value)]
    pub mds_register: Option<bool>,
    #[arg(long)]
    pub hostname: Option<String>,
    #[arg(long)]
    pub ipc: Option<String>,
    pub uuid: Option<String>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = bool_value)]
    pub full: Option<bool>,
    #[arg(long = "no-legend", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = bool_value)]
    pub no_legend: Option<bool>,
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Wait for the pod to exit (optionally at most this long, e.g. 10s)
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub wait: Option<String>,
    /// Wait for the pod to be ready (optionally at most this long)
    #[arg(long = "wait-ready", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub wait_ready: Option<String>,
    #[arg(long)]
    pub format: Option<String>,
    #[arg(long = "uuid-file")]
    pub uuid_file: Option<PathBuf>,
    pub uuid: Option<String>,
}

#[derive(Debug, Args)]
pub struct EnterArgs {
    /// Name of the app to enter within the specified pod
    #[arg(long)]
    pub app: Option<String>,
    pub uuid: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = bool_value)]
    pub force: Option<bool>,
    #[arg(long = "uuid-file")]
    pub uuid_file: Option<PathBuf>,
    pub uuids: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    #[arg(long = "uuid-file")]
    pub uuid_file: Option<PathBuf>,
    pub uuids: Vec<String>,
}

#[derive(Debug, Args)]
pub struct GcArgs {
    /// Duration to wait before discarding inactive pods from garbage
    #[arg(long = "grace-period", default_value = "30m")]
    pub grace_period: String,
    /// Duration to wait before expiring prepared pods
    #[arg(long = "expire-prepared", default_value = "24h")]
    pub expire_prepared: String,
    /// If set to true, only mark exited pods as garbage
    #[arg(long = "mark-only", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = bool_value)]
    pub mark_only: Option<bool>,
}

#[derive(Debug, Args)]
pub struct CatManifestArgs {
    #[arg(long = "pretty-print", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = bool_value)]
    pub pretty_print: Option<bool>,
    #[arg(long = "uuid-file")]
    pub uuid_file: Option<PathBuf>,
    pub uuid: Option<String>,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[arg(long)]
    pub app: Option<String>,
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
    #[command(hide = true, disable_help_flag = true)]
    Fetch(RawArgs),
}

#[derive(Debug, Args)]
pub struct ImageListArgs {
    #[arg(long)]
    pub fields: Option<String>,
    #[arg(long)]
    pub sort: Option<String>,
    #[arg(long)]
    pub order: Option<String>,
    #[arg(long = "no-legend", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = bool_value)]
    pub no_legend: Option<bool>,
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = bool_value)]
    pub full: Option<bool>,
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(Debug, Args)]
pub struct ImageRmArgs {
    pub images: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ImageGcArgs {
    #[arg(long = "grace-period", default_value = "24h")]
    pub grace_period: String,
}

#[derive(Debug, Args)]
pub struct ImageExportArgs {
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = bool_value)]
    pub overwrite: Option<bool>,
    pub image: String,
    pub output: PathBuf,
}

#[derive(Debug, Args)]
pub struct ImageExtractArgs {
    #[arg(long = "rootfs-only", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = bool_value)]
    pub rootfs_only: Option<bool>,
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = bool_value)]
    pub overwrite: Option<bool>,
    pub image: String,
    pub output: PathBuf,
}

#[derive(Debug, Args)]
pub struct ImageCatManifestArgs {
    #[arg(long = "pretty-print", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = bool_value)]
    pub pretty_print: Option<bool>,
    pub image: String,
}

#[derive(Debug, Args)]
pub struct ImageVerifyArgs {
    pub images: Vec<String>,
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
}
