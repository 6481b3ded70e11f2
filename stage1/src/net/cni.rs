//! Running a CNI plugin the way rkt did (docs/stage-contract.md, "Networking"): the conf on
//! stdin, the request in `CNI_*` variables, a result or an error as JSON on stdout.
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

/// What a plugin was asked to do.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CniCommand {
    Add,
    Del,
}

impl CniCommand {
    fn as_str(self) -> &'static str {
        match self {
            CniCommand::Add => "ADD",
            CniCommand::Del => "DEL",
        }
    }
}

/// One plugin call.
pub struct Call<'a> {
    pub command: CniCommand,
    pub plugin: &'a Path,
    pub conf: &'a [u8],
    pub container_id: &'a str,
    pub netns: &'a str,
    pub if_name: &'a str,
    pub args: &'a str,
    /// `CNI_PATH`: where the plugin looks for the plugins it delegates to (IPAM).
    pub search_path: &'a [PathBuf],
}

/// The parts of an ADD result rkt used: the pod's address, its gateway, and DNS.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AddResult {
    /// `a.b.c.d/len`.
    pub ip: Option<(std::net::Ipv4Addr, u8)>,
    pub gateway: Option<std::net::Ipv4Addr>,
    pub dns: Dns,
}

/// DNS settings a plugin returned.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dns {
    pub nameservers: Vec<String>,
    pub domain: String,
    pub search: Vec<String>,
    pub options: Vec<String>,
}

impl Dns {
    pub fn is_empty(&self) -> bool {
        self.nameservers.is_empty()
            && self.domain.is_empty()
            && self.search.is_empty()
            && self.options.is_empty()
    }

    /// A resolv.conf with these settings, headed by `comment`.
    pub fn resolv_conf(&self, comment: &str) -> String {
        let mut out = format!("# {comment}\n\n");
        if !self.search.is_empty() {
            out.push_str(&format!("search {}\n", self.search.join(" ")));
        }
        for ns in &self.nameservers {
            out.push_str(&format!("nameserver {ns}\n"));
        }
        if !self.options.is_empty() {
            out.push_str(&format!("options {}\n", self.options.join(" ")));
        }
        if !self.domain.is_empty() {
            out.push_str(&format!("domain {}\n", self.domain));
        }
        out
    }
}

/// `CNI_ARGS` for the operator's `--net=NAME:ARGS`. Today's plugins refuse arguments they do
/// not know unless told `IgnoreUnknown=1` (the bridge plugin knows no `IP`, which its IPAM
/// plugin takes), so it is added, as other CNI runtimes do; rkt's plugins did not need it.
fn cni_args(args: &str) -> String {
    if args.is_empty() || args.split(';').any(|a| a.starts_with("IgnoreUnknown=")) {
        args.to_string()
    } else {
        format!("IgnoreUnknown=1;{args}")
    }
}

/// The first executable regular file named `plugin` in `dirs`.
pub fn find_plugin(plugin: &str, dirs: &[PathBuf]) -> Option<PathBuf> {
    dirs.iter()
        .map(|d| d.join(plugin))
        .find(|p| p.metadata().map(|m| m.is_file()).unwrap_or(false))
}

/// Runs the plugin; returns its stdout, or its error message (`msg` and `details` of the CNI
/// error it printed).
pub fn exec(call: &Call<'_>) -> Result<Vec<u8>> {
    let search = std::env::join_paths(call.search_path)
        .map_err(|_| anyhow!("a plugin directory contains ':'"))?;
    let mut cmd = Command::new(call.plugin);
    cmd.env("CNI_VERSION", "0.1.0")
        .env("CNI_COMMAND", call.command.as_str())
        .env("CNI_CONTAINERID", call.container_id)
        .env("CNI_NETNS", call.netns)
        .env("CNI_ARGS", cni_args(call.args))
        .env("CNI_IFNAME", call.if_name)
        .env("CNI_PATH", search)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    // Plugins run iptables and friends through PATH.
    if std::env::var_os("PATH").is_none() {
        cmd.env("PATH", crate::contract::DEFAULT_PATH);
    }
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot execute {}", call.plugin.display()))?;
    let mut stdin = child.stdin.take().context("bug: plugin stdin not piped")?;
    // A plugin that exits without reading its conf makes this fail; its status tells why.
    let _ = stdin.write_all(call.conf);
    drop(stdin);
    let out = child
        .wait_with_output()
        .with_context(|| format!("cannot wait for {}", call.plugin.display()))?;
    if out.status.success() {
        return Ok(out.stdout);
    }
    Err(anyhow!(plugin_error(&out.stdout, out.status)))
}

/// A failed plugin's message: `msg[; details]` from its JSON error, else what it printed.
pub fn plugin_error(stdout: &[u8], status: std::process::ExitStatus) -> String {
    match serde_json::from_slice::<Value>(stdout) {
        Ok(v) if v.get("msg").and_then(Value::as_str).is_some() => {
            let msg = v["msg"].as_str().unwrap_or_default();
            match v.get("details").and_then(Value::as_str) {
                Some(d) if !d.is_empty() => format!("{msg}; {d}"),
                _ => msg.to_string(),
            }
        }
        _ => format!(
            "the plugin failed ({status}) without a CNI error message: {:?}",
            String::from_utf8_lossy(stdout).trim()
        ),
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn cidr(s: &str) -> Result<(std::net::Ipv4Addr, u8)> {
    let (ip, len) = s
        .split_once('/')
        .ok_or_else(|| anyhow!("address {s:?} has no prefix length"))?;
    let ip = ip
        .parse()
        .map_err(|_| anyhow!("{ip:?} is not an IPv4 address"))?;
    let len: u8 = len
        .parse()
        .ok()
        .filter(|l| *l <= 32)
        .ok_or_else(|| anyhow!("{len:?} is not an IPv4 prefix length"))?;
    Ok((ip, len))
}

/// Parses an ADD result: CNI 0.1/0.2 (`ip4`) or 0.3 and later (`ips`, first IPv4 entry).
pub fn parse_result(stdout: &[u8]) -> Result<AddResult> {
    let v: Value = serde_json::from_slice(stdout).with_context(|| {
        format!(
            "the plugin's result is not JSON: {:?}",
            String::from_utf8_lossy(stdout)
        )
    })?;
    let mut out = AddResult::default();
    let entry = if let Some(ip4) = v.get("ip4") {
        Some((ip4.get("ip"), ip4.get("gateway")))
    } else {
        v.get("ips").and_then(Value::as_array).and_then(|ips| {
            ips.iter()
                .find(|e| {
                    e.get("version").and_then(Value::as_str) == Some("4")
                        || e.get("address")
                            .and_then(Value::as_str)
                            .is_some_and(|a| a.contains('.'))
                })
                .map(|e| (e.get("address"), e.get("gateway")))
        })
    };
    if let Some((ip, gw)) = entry {
        if let Some(ip) = ip.and_then(Value::as_str) {
            out.ip = Some(cidr(ip)?);
        }
        if let Some(gw) = gw.and_then(Value::as_str) {
            out.gateway = Some(
                gw.parse()
                    .map_err(|_| anyhow!("gateway {gw:?} is not an IPv4 address"))?,
            );
        }
    }
    if let Some(dns) = v.get("dns") {
        if !dns.is_object() {
            bail!("the plugin's result has a \"dns\" that is not an object");
        }
        out.dns = Dns {
            nameservers: strings(dns.get("nameservers")),
            domain: dns
                .get("domain")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            search: strings(dns.get("search")),
            options: strings(dns.get("options")),
        };
    }
    Ok(out)
}

/// The netmask of a prefix length, as a dotted quad (rkt's `mask`).
pub fn mask(len: u8) -> std::net::Ipv4Addr {
    let bits = if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len))
    };
    std::net::Ipv4Addr::from(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_of_both_cni_generations() {
        let old = br#"{"cniVersion":"0.1.0","ip4":{"ip":"172.16.28.5/24","gateway":"172.16.28.1"},"dns":{"nameservers":["10.0.0.1"]}}"#;
        let r = parse_result(old).unwrap();
        assert_eq!(r.ip, Some(("172.16.28.5".parse().unwrap(), 24)));
        assert_eq!(r.gateway, Some("172.16.28.1".parse().unwrap()));
        assert_eq!(r.dns.nameservers, ["10.0.0.1"]);
        let new = br#"{"cniVersion":"1.0.0","ips":[{"address":"fd00::2/64"},{"address":"10.9.0.7/16","gateway":"10.9.0.1"}],"dns":{}}"#;
        let r = parse_result(new).unwrap();
        assert_eq!(r.ip, Some(("10.9.0.7".parse().unwrap(), 16)));
        assert!(r.dns.is_empty());
        assert!(parse_result(b"not json").is_err());
        assert!(parse_result(br#"{"ip4":{"ip":"1.2.3.4"}}"#).is_err());
    }

    #[test]
    fn unknown_args_are_ignored_unless_the_operator_says_otherwise() {
        assert_eq!(cni_args(""), "");
        assert_eq!(cni_args("IP=10.1.0.5"), "IgnoreUnknown=1;IP=10.1.0.5");
        assert_eq!(
            cni_args("IgnoreUnknown=0;IP=1.2.3.4"),
            "IgnoreUnknown=0;IP=1.2.3.4"
        );
    }

    #[test]
    fn masks() {
        assert_eq!(mask(24).to_string(), "255.255.255.0");
        assert_eq!(mask(0).to_string(), "0.0.0.0");
        assert_eq!(mask(32).to_string(), "255.255.255.255");
    }

    #[test]
    fn plugin_errors_show_msg_and_details() {
        use std::os::unix::process::ExitStatusExt;
        let status = std::process::ExitStatus::from_raw(1 << 8);
        let e = plugin_error(
            br#"{"code":11,"msg":"no IP","details":"range full"}"#,
            status,
        );
        assert_eq!(e, "no IP; range full");
        assert!(plugin_error(b"garbage", status).contains("garbage"));
    }

    #[test]
    fn resolv_conf_as_rkt_wrote_it() {
        let dns = Dns {
            nameservers: vec!["10.1.1.1".into(), "10.1.1.2".into()],
            domain: "example.test".into(),
            search: vec!["a.test".into()],
            options: vec!["ndots:2".into()],
        };
        assert_eq!(
            dns.resolv_conf("Generated by rkt from network n"),
            "# Generated by rkt from network n\n\nsearch a.test\nnameserver 10.1.1.1\nnameserver 10.1.1.2\noptions ndots:2\ndomain example.test\n"
        );
    }
}
