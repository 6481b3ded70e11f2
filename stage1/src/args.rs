//! The documented entrypoint arguments (docs/stage-contract.md, "Entrypoints and their arguments"), parsed the way Go's `flag`
//! package does: `--name=value`, `--name value`, boolean `--name` or `--name=true|false`, flags
//! before the positional arguments.
use anyhow::{anyhow, bail, Result};

/// Arguments of the `run` entrypoint.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct RunArgs {
    pub debug: bool,
    pub net: Vec<String>,
    pub interactive: bool,
    pub private_users: Option<String>,
    pub mds_token: Option<String>,
    pub local_config: Option<String>,
    pub hostname: Option<String>,
    pub dns_conf_mode: Option<String>,
    pub disable_capabilities: bool,
    pub disable_paths: bool,
    pub disable_seccomp: bool,
    pub mutable: bool,
    pub ipc: Option<String>,
    pub uuid: String,
}

impl RunArgs {
    /// The `hosts=` part of `--dns-conf-mode=resolv=<m>,hosts=<m>`.
    pub fn hosts_mode(&self) -> Option<&str> {
        self.dns_conf_mode
            .as_deref()?
            .split(',')
            .find_map(|part| part.strip_prefix("hosts="))
    }
}

/// Arguments of the `enter` entrypoint: `--pid=N --appname=NAME -- CMD...`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct EnterArgs {
    pub pid: i32,
    pub app: String,
    pub command: Vec<String>,
}

/// Arguments of the `stop` and `gc` entrypoints.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct PodArgs {
    pub force: bool,
    pub debug: bool,
    pub local_config: Option<String>,
    pub uuid: String,
}

/// One parsed flag.
enum Flag<'a> {
    Bool(&'a str, bool),
    Value(&'a str, String),
}

/// Splits `args` into flags and positionals. `bools` lists the boolean flags.
fn parse<'a>(args: &'a [String], bools: &[&str]) -> Result<(Vec<Flag<'a>>, Vec<String>)> {
    let mut flags = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        if arg == "--" {
            i += 1;
            break;
        }
        let Some(body) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
            break;
        };
        if body.is_empty() {
            break;
        }
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        if bools.contains(&name) {
            let value = match inline.as_deref() {
                None => true,
                Some(v) => aci::go::parse_bool(v)
                    .ok_or_else(|| anyhow!("invalid boolean value {v:?} for flag --{name}"))?,
            };
            flags.push(Flag::Bool(name, value));
        } else {
            let value = match inline {
                Some(v) => v,
                None => {
                    i += 1;
                    args.get(i)
                        .cloned()
                        .ok_or_else(|| anyhow!("flag needs an argument: --{name}"))?
                }
            };
            flags.push(Flag::Value(name, value));
        }
        i += 1;
    }
    Ok((flags, args[i..].to_vec()))
}

fn one_uuid(mut positionals: Vec<String>) -> Result<String> {
    match positionals.len() {
        1 => Ok(positionals.remove(0)),
        0 => bail!("missing pod UUID argument"),
        _ => bail!("expected only the pod UUID after the flags, got {positionals:?}"),
    }
}

impl RunArgs {
    pub fn parse(args: &[String]) -> Result<RunArgs> {
        let bools = [
            "debug",
            "interactive",
            "disable-capabilities-restriction",
            "disable-paths",
            "disable-seccomp",
            "mutable",
        ];
        let (flags, positionals) = parse(args, &bools)?;
        let mut out = RunArgs::default();
        for flag in flags {
            match flag {
                Flag::Bool("debug", v) => out.debug = v,
                Flag::Bool("interactive", v) => out.interactive = v,
                Flag::Bool("disable-capabilities-restriction", v) => out.disable_capabilities = v,
                Flag::Bool("disable-paths", v) => out.disable_paths = v,
                Flag::Bool("disable-seccomp", v) => out.disable_seccomp = v,
                Flag::Bool("mutable", v) => out.mutable = v,
                Flag::Value("net", v) => out.net = split_net(&v),
                Flag::Value("private-users", v) => out.private_users = Some(v),
                Flag::Value("mds-token", v) => out.mds_token = Some(v),
                Flag::Value("local-config", v) => out.local_config = Some(v),
                Flag::Value("hostname", v) => out.hostname = Some(v),
                Flag::Value("dns-conf-mode", v) => out.dns_conf_mode = Some(v),
                Flag::Value("ipc", v) => out.ipc = Some(v),
                Flag::Value(name, _) | Flag::Bool(name, _) => {
                    bail!("flag provided but not defined: -{name}")
                }
            }
        }
        if out.net.is_empty() {
            out.net = vec!["default".into()];
        }
        out.uuid = one_uuid(positionals)?;
        Ok(out)
    }
}

/// `--net` is `name[:args][,name[:args]]`; we keep the entries whole.
fn split_net(v: &str) -> Vec<String> {
    v.split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

impl EnterArgs {
    pub fn parse(args: &[String]) -> Result<EnterArgs> {
        let (flags, command) = parse(args, &[])?;
        let mut out = EnterArgs::default();
        for flag in flags {
            match flag {
                Flag::Value("pid", v) => {
                    out.pid = v
                        .parse()
                        .map_err(|_| anyhow!("invalid --pid value {v:?}"))?
                }
                Flag::Value("appname", v) => out.app = v,
                Flag::Value(name, _) | Flag::Bool(name, _) => {
                    bail!("flag provided but not defined: -{name}")
                }
            }
        }
        if out.pid <= 0 {
            bail!("missing --pid");
        }
        if out.app.is_empty() {
            bail!("missing --appname");
        }
        if command.is_empty() {
            bail!("missing command to execute");
        }
        out.command = command;
        Ok(out)
    }
}

impl PodArgs {
    pub fn parse(args: &[String]) -> Result<PodArgs> {
        let (flags, positionals) = parse(args, &["force", "debug"])?;
        let mut out = PodArgs::default();
        for flag in flags {
            match flag {
                Flag::Bool("force", v) => out.force = v,
                Flag::Bool("debug", v) => out.debug = v,
                Flag::Value("local-config", v) => out.local_config = Some(v),
                Flag::Value(name, _) | Flag::Bool(name, _) => {
                    bail!("flag provided but not defined: -{name}")
                }
            }
        }
        out.uuid = one_uuid(positionals)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn run_arguments_as_stage0_sends_them() {
        let a = RunArgs::parse(&args(&[
            "--debug",
            "--net=host",
            "--interactive=false",
            "--local-config=/etc/rkt",
            "--hostname=box",
            "--ipc",
            "private",
            "0b3c1bc6-8b1a-4b59-a41a-3f1c8b7cbbbd",
        ]))
        .unwrap();
        assert!(a.debug && !a.interactive);
        assert_eq!(a.net, ["host"]);
        assert_eq!(a.hostname.as_deref(), Some("box"));
        assert_eq!(a.ipc.as_deref(), Some("private"));
        assert_eq!(a.uuid, "0b3c1bc6-8b1a-4b59-a41a-3f1c8b7cbbbd");
    }

    #[test]
    fn run_rejects_unknown_flags_and_missing_uuid() {
        assert!(RunArgs::parse(&args(&["--bogus", "uuid"])).is_err());
        assert!(RunArgs::parse(&args(&["--net=host"])).is_err());
        assert!(RunArgs::parse(&args(&["--interactive=maybe", "u"])).is_err());
        assert_eq!(RunArgs::parse(&args(&["u"])).unwrap().net, vec!["default"]);
    }

    #[test]
    fn enter_takes_the_command_after_double_dash() {
        let a = EnterArgs::parse(&args(&[
            "--pid=42",
            "--appname=app",
            "--",
            "/bin/sh",
            "-c",
            "id",
        ]))
        .unwrap();
        assert_eq!(a.pid, 42);
        assert_eq!(a.command, args(&["/bin/sh", "-c", "id"]));
        assert!(EnterArgs::parse(&args(&["--appname=a", "--", "sh"])).is_err());
    }

    #[test]
    fn stop_and_gc() {
        let a = PodArgs::parse(&args(&["--force", "u"])).unwrap();
        assert!(a.force);
        let g = PodArgs::parse(&args(&["--debug", "--local-config", "/etc/rkt", "u"])).unwrap();
        assert_eq!(g.local_config.as_deref(), Some("/etc/rkt"));
    }
}
