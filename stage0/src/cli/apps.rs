//! rkt's image-list grammar for `run`, `prepare` and `fetch` (REFERENCE §1.1, SCHEDULERS §0):
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
use anyhow::{anyhow, bail, Result};

use super::flags::parse_bool;

/// Which command's flag set is in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppsCommand {
    Run,
    Prepare,
    Fetch,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `--flag` means true; a value only with `=`.
    Bool,
    /// Needs a value.
    Value,
    /// `--flag` alone means this value; a value only with `=` (pflag's NoOptDefVal).
    OptionalValue(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Global,
    Pod,
    App,
    /// Pod-wide before the first image, the last app's after.
    Mount,
}

const RUN: u8 = 1;
const PREPARE: u8 = 2;
const FETCH: u8 = 4;
const RP: u8 = RUN | PREPARE;
const ALL: u8 = RUN | PREPARE | FETCH;

struct FlagDef {
    name: &'static str,
    kind: Kind,
    scope: Scope,
    commands: u8,
}

const fn def(name: &'static str, kind: Kind, scope: Scope, commands: u8) -> FlagDef {
    FlagDef {
        name,
        kind,
        scope,
        commands,
    }
}

use Kind::{Bool, OptionalValue, Value};
use Scope::{App, Global, Mount, Pod};

/// rkt 1.30's flags for these commands (rkt/run.go, prepare.go, fetch.go, cli_apps.go).
const FLAGS: &[FlagDef] = &[
    def("debug", Bool, Global, ALL),
    def("dir", Value, Global, ALL),
    def("insecure-options", Value, Global, ALL),
    def("system-config", Value, Global, ALL),
    def("local-config", Value, Global, ALL),
    def("user-config", Value, Global, ALL),
    def("trust-keys-from-https", Bool, Global, ALL),
    def("image-size-limit", Value, Global, ALL),
    def("image-expansion-limit", Value, Global, ALL),
    def("help", Bool, Global, ALL),
    // pod level
    def("stage1-url", Value, Pod, RP),
    def("stage1-path", Value, Pod, RP),
    def("stage1-name", Value, Pod, RP),
    def("stage1-hash", Value, Pod, RP),
    def("stage1-from-dir", Value, Pod, RP),
    def("port", Value, Pod, RP),
    def("net", OptionalValue("default"), Pod, RUN),
    def("inherit-env", Bool, Pod, RP),
    def("no-overlay", Bool, Pod, RP),
    def("private-users", Bool, Pod, RP),
    def("set-env", Value, Pod, RP),
    def("set-env-file", Value, Pod, RP),
    def("interactive", Bool, Pod, RUN),
    def("dns", Value, Pod, RUN),
    def("dns-search", Value, Pod, RUN),
    def("dns-opt", Value, Pod, RUN),
    def("dns-domain", Value, Pod, RUN),
    def("hosts-entry", Value, Pod, RUN),
    def("store-only", Bool, Pod, ALL),
    def("no-store", Bool, Pod, ALL),
    def("pull-policy", Value, Pod, ALL),
    def("pod-manifest", Value, Pod, RP),
    def("mds-register", Bool, Pod, RUN),
    def("uuid-file-save", Value, Pod, RUN),
    def("hostname", Value, Pod, RUN),
    def("volume", Value, Pod, RP),
    def("ipc", Value, Pod, RUN),
    def("quiet", Bool, Pod, PREPARE),
    def("full", Bool, Pod, FETCH),
    // per app
    def("signature", Value, App, ALL),
    def("exec", Value, App, RP),
    def("working-dir", Value, App, RP),
    def("readonly-rootfs", Value, App, RP),
    def("mount", Value, Mount, RP),
    def("user", Value, App, RP),
    def("group", Value, App, RP),
    def("supplementary-gids", Value, App, RP),
    def("name", Value, App, RP),
    def("annotation", Value, App, RP),
    def("user-annotation", Value, App, RP),
    def("user-label", Value, App, RP),
    def("environment", Value, App, RP),
    def("memory", Value, App, RP),
    def("cpu", Value, App, RP),
    def("cpu-shares", Value, App, RP),
    def("caps-retain", Value, App, RP),
    def("caps-remove", Value, App, RP),
    def("cap-retain", Value, App, RP),
    def("cap-remove", Value, App, RP),
    def("seccomp", Value, App, RP),
    def("oom-score-adj", Value, App, RP),
    def("stdin", Value, App, RUN),
    def("stdout", Value, App, RUN),
    def("stderr", Value, App, RUN),
];

/// `--mount volume=NAME,target=PATH`.
#[derive(Debug, Clone, PartialEq)]
pub struct MountArg {
    pub volume: String,
    pub target: String,
}

/// Flags in the order given, as (name, value); repeated flags keep every value.
pub type Flags = Vec<(String, String)>;

/// The last value of a flag.
fn last<'a>(flags: &'a Flags, name: &str) -> Option<&'a str> {
    flags
        .iter()
        .rev()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Every value of a repeatable flag, in order.
fn every<'a>(flags: &'a Flags, name: &str) -> Vec<&'a str> {
    flags
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

/// One image with the flags that followed it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AppArgs {
    pub image: String,
    /// Arguments after `--`, appended to the exec.
    pub args: Vec<String>,
    /// Per-app flags.
    pub flags: Flags,
    pub mounts: Vec<MountArg>,
}

impl AppArgs {
    pub fn get(&self, name: &str) -> Option<&str> {
        last(&self.flags, name)
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        every(&self.flags, name)
    }
}

/// The parsed command line of `run`, `prepare` or `fetch`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParsedApps {
    pub apps: Vec<AppArgs>,
    /// Pod-level and global flags.
    pub flags: Flags,
    /// `--mount`s given before any image.
    pub mounts: Vec<MountArg>,
}

impl ParsedApps {
    pub fn get(&self, name: &str) -> Option<&str> {
        last(&self.flags, name)
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        every(&self.flags, name)
    }

    /// A boolean pod flag (absent = false).
    pub fn bool(&self, name: &str) -> bool {
        self.get(name) == Some("true")
    }

    pub fn wants_help(&self) -> bool {
        self.bool("help")
    }
}

/// Parses the arguments that follow the subcommand.
pub fn parse(cmd: AppsCommand, args: &[String]) -> Result<ParsedApps> {
    let mask = match cmd {
        AppsCommand::Run => RUN,
        AppsCommand::Prepare => PREPARE,
        AppsCommand::Fetch => FETCH,
    };
    let mut out = ParsedApps::default();
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
            } else if let Some(app) = out.apps.last_mut() {
                app.args.push(arg.clone());
            }
            continue;
        }
        match arg.as_str() {
            "--" => {
                if cmd == AppsCommand::Fetch {
                    bail!("app arguments unsupported");
                }
                if apps_at_last_args == out.apps.len() {
                    if out.apps.is_empty() {
                        bail!("an image is required before any app arguments");
                    }
                    bail!("only one set of app arguments allowed per image");
                }
                apps_at_last_args = out.apps.len();
                in_app_args = true;
            }
            // Not an image: a stray list terminator.
            "---" => {}
            _ if arg.starts_with('-') && arg.len() > 1 => {
                let (name, inline) = split_flag(arg)?;
                let def = FLAGS
                    .iter()
                    .find(|d| d.name == name && d.commands & mask != 0)
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
                apply(&mut out, def, value)?;
            }
            _ => out.apps.push(AppArgs {
                image: arg.clone(),
                ..AppArgs::default()
            }),
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

fn apply(out: &mut ParsedApps, def: &FlagDef, value: String) -> Result<()> {
    match def.scope {
        Global | Pod => out.flags.push((def.name.to_string(), value)),
        Mount => {
            let mount = parse_mount(&value)?;
            match out.apps.last_mut() {
                Some(app) => app.mounts.push(mount),
                None => out.mounts.push(mount),
            }
        }
        App => {
            let app = out
                .apps
                .last_mut()
                .ok_or_else(|| anyhow!("--{} must follow an image", def.name))?;
            let single = matches!(def.name, "exec" | "signature");
            if single && app.get(def.name).is_some() {
                bail!("--{} specified multiple times for the same image", def.name);
            }
            app.flags.push((def.name.to_string(), value));
        }
    }
    Ok(())
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
    if !target.starts_with('/') {
        bail!("--mount {s:?}: target {target:?} must be an absolute path");
    }
    Ok(MountArg { volume, target })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_run(args: &[&str]) -> Result<ParsedApps> {
        let v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        parse(AppsCommand::Run, &v)
    }

    #[test]
    fn seed_argument_example_binds_args_and_execs_to_their_images() {
        let p = parse_run(&[
            "example.com/worker",
            "--exec",
            "/bin/ov",
            "--",
            "--loglevel",
            "verbose",
            "---",
            "example.com/syncer",
            "--exec",
            "/bin/syncer2",
            "--",
            "--interval",
            "30s",
        ])
        .unwrap();
        assert_eq!(p.apps.len(), 2);
        assert_eq!(p.apps[0].get("exec"), Some("/bin/ov"));
        assert_eq!(p.apps[0].args, ["--loglevel", "verbose"]);
        assert_eq!(p.apps[1].get("exec"), Some("/bin/syncer2"));
        assert_eq!(p.apps[1].args, ["--interval", "30s"]);
    }

    #[test]
    fn pod_and_global_flags_may_follow_images() {
        let p = parse_run(&[
            "img",
            "--set-env=A=1",
            "--debug=false",
            "--memory=128M",
            "--net=host",
        ])
        .unwrap();
        assert_eq!(p.get("set-env"), Some("A=1"));
        assert_eq!(p.get("debug"), Some("false"));
        assert_eq!(p.get("net"), Some("host"));
        assert_eq!(p.apps[0].get("memory"), Some("128M"));
    }

    #[test]
    fn per_app_flags_before_any_image_are_rejected() {
        let e = parse_run(&["--exec=/bin/sh", "img"])
            .unwrap_err()
            .to_string();
        assert_eq!(e, "--exec must follow an image");
        let e = parse_run(&["--user", "0", "img"]).unwrap_err().to_string();
        assert_eq!(e, "--user must follow an image");
    }

    #[test]
    fn mount_before_images_is_pod_wide() {
        let p = parse_run(&[
            "--volume",
            "logs,kind=host,source=/srv/logs",
            "--mount",
            "volume=logs,target=/var/log",
            "a",
            "b",
            "--mount",
            "volume=logs,target=/opt/log",
        ])
        .unwrap();
        assert_eq!(p.mounts.len(), 1);
        assert!(p.apps[0].mounts.is_empty());
        assert_eq!(p.apps[1].mounts[0].target, "/opt/log");
    }

    #[test]
    fn double_dash_rules() {
        assert_eq!(
            parse_run(&["--", "x"]).unwrap_err().to_string(),
            "an image is required before any app arguments"
        );
        assert_eq!(
            parse_run(&["img", "--", "a", "---", "--", "b"])
                .unwrap_err()
                .to_string(),
            "only one set of app arguments allowed per image"
        );
        let v: Vec<String> = ["img", "--", "a"].iter().map(|s| s.to_string()).collect();
        assert!(parse(AppsCommand::Fetch, &v).is_err());
    }

    #[test]
    fn bool_flags_follow_pflag() {
        let p = parse_run(&["--inherit-env", "img"]).unwrap();
        assert!(p.bool("inherit-env"));
        // A bare bool never takes the next word: "false" is an image here.
        let p = parse_run(&["--inherit-env", "false"]).unwrap();
        assert_eq!(p.apps[0].image, "false");
        assert!(!parse_run(&["--no-overlay=false", "img"])
            .unwrap()
            .bool("no-overlay"));
        assert!(parse_run(&["--no-overlay=maybe", "img"]).is_err());
        // --net alone means default and never takes the next word.
        let p = parse_run(&["--net", "img"]).unwrap();
        assert_eq!(p.get("net"), Some("default"));
        assert_eq!(p.apps[0].image, "img");
    }

    #[test]
    fn unknown_flags_and_command_specific_ones() {
        assert_eq!(
            parse_run(&["--bogus", "img"]).unwrap_err().to_string(),
            "unknown flag: --bogus"
        );
        let v: Vec<String> = ["--interactive", "img"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert!(parse(AppsCommand::Prepare, &v).is_err());
        assert!(parse(AppsCommand::Fetch, &["--full".into(), "x".into()])
            .unwrap()
            .bool("full"));
    }

    #[test]
    fn exec_twice_for_one_image_is_an_error() {
        assert_eq!(
            parse_run(&["img", "--exec=/a", "--exec=/b"])
                .unwrap_err()
                .to_string(),
            "--exec specified multiple times for the same image"
        );
    }

    #[test]
    fn mount_syntax_errors_name_the_problem() {
        assert!(parse_mount("volume=data,target=/x").is_ok());
        assert!(parse_mount("volume=Data,target=/x").is_err());
        assert!(parse_mount("volume=data,target=x").is_err());
        assert!(parse_mount("volume=data").is_err());
        assert!(parse_mount("volume=data,target=/x,foo=bar")
            .unwrap_err()
            .to_string()
            .contains("foo"));
    }
}
