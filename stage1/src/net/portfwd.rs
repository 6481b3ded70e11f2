//! `--port`: host ports forwarded to the pod with iptables NAT rules in two chains of the
//! pod's own, as rkt made them (docs/stage-contract.md, "Networking"). Everything here is
//! named after the pod, so removing it never touches another pod's or the host's rules.
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

/// One forwarded port: host side and pod side.
#[derive(Debug, Clone, PartialEq)]
pub struct Forward {
    pub name: String,
    pub protocol: String,
    /// `None`: every host address.
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u32,
    pub pod_port: u32,
}

/// The pod's two chains: DNAT (jumped to for local destinations) and SNAT (for connections
/// from the host's loopback).
pub fn chains(uuid: &str) -> (String, String) {
    let short: String = uuid.chars().take(8).collect();
    (
        format!("RKT-PFWD-DNAT-{short}"),
        format!("RKT-PFWD-SNAT-{short}"),
    )
}

/// The jumps from the built-in chains to the pod's chains: `(chain, rule)`.
fn jumps(dnat: &str, snat: &str) -> Vec<(&'static str, Vec<String>)> {
    let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    vec![
        (
            "POSTROUTING",
            v(&["-s", "127.0.0.1", "!", "-d", "127.0.0.1", "-j", snat]),
        ),
        (
            "PREROUTING",
            v(&["-m", "addrtype", "--dst-type", "LOCAL", "-j", dnat]),
        ),
        (
            "OUTPUT",
            v(&["-m", "addrtype", "--dst-type", "LOCAL", "-j", dnat]),
        ),
    ]
}

/// The rules in the pod's chains for one port: `(chain, rule)`.
pub fn port_rules(
    f: &Forward,
    pod_ip: Ipv4Addr,
    dnat: &str,
    snat: &str,
) -> Vec<(String, Vec<String>)> {
    let dst = match f.host_ip {
        Some(ip) if !ip.is_unspecified() => ip.to_string(),
        _ => "0.0.0.0/0".to_string(),
    };
    let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    vec![
        (
            dnat.to_string(),
            v(&[
                "-d",
                &dst,
                "-p",
                &f.protocol,
                "--dport",
                &f.host_port.to_string(),
                "-j",
                "DNAT",
                "--to-destination",
                &format!("{pod_ip}:{}", f.pod_port),
            ]),
        ),
        (
            snat.to_string(),
            v(&[
                "-p",
                &f.protocol,
                "-s",
                "127.0.0.1",
                "-d",
                &pod_ip.to_string(),
                "--dport",
                &f.pod_port.to_string(),
                "-j",
                "MASQUERADE",
            ]),
        ),
    ]
}

/// Runs `iptables -w -t nat ARGS`; returns its stdout, or its stderr as the error.
fn iptables(args: &[&str]) -> Result<String> {
    let mut cmd = Command::new("iptables");
    if std::env::var_os("PATH").is_none() {
        cmd.env("PATH", crate::contract::DEFAULT_PATH);
    }
    let out = cmd
        .args(["-w", "-t", "nat"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("cannot run iptables (install Debian's iptables package)")?;
    if !out.status.success() {
        bail!(
            "iptables -t nat {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A DNAT rule already forwarding one of `forwards`' host ports (any pod's, or anyone's):
/// its description.
fn already_forwarded(rules: &str, forwards: &[Forward]) -> Option<String> {
    for line in rules.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if !words.contains(&"DNAT") {
            continue;
        }
        let after = |key: &str| {
            words
                .iter()
                .position(|w| *w == key)
                .and_then(|i| words.get(i + 1))
                .copied()
        };
        for f in forwards {
            let same_port = after("--dport") == Some(f.host_port.to_string().as_str());
            let same_proto = after("-p") == Some(f.protocol.as_str());
            let dst = after("-d").unwrap_or("0.0.0.0/0");
            let same_ip = match f.host_ip {
                Some(ip) if !ip.is_unspecified() => {
                    dst == "0.0.0.0/0" || dst == format!("{ip}/32") || dst == ip.to_string()
                }
                _ => true,
            };
            if same_port && same_proto && same_ip {
                return Some(format!(
                    "host port {}/{} is already forwarded ({})",
                    f.host_port,
                    f.protocol,
                    line.trim()
                ));
            }
        }
    }
    None
}

/// Sets up forwarding of `forwards` to `pod_ip`. Refuses host ports another rule forwards.
/// On failure, what was made stays for [`teardown`] (the caller's cleanup) to remove.
pub fn setup(uuid: &str, forwards: &[Forward], pod_ip: Ipv4Addr) -> Result<()> {
    let existing = iptables(&["-S"])?;
    if let Some(conflict) = already_forwarded(&existing, forwards) {
        bail!("{conflict}: choose another --port");
    }
    let (dnat, snat) = chains(uuid);
    iptables(&["-N", &dnat])?;
    iptables(&["-N", &snat])?;
    for f in forwards {
        for (chain, rule) in port_rules(f, pod_ip, &dnat, &snat) {
            let mut args = vec!["-A", chain.as_str()];
            args.extend(rule.iter().map(String::as_str));
            iptables(&args)?;
        }
    }
    for (chain, rule) in jumps(&dnat, &snat) {
        let mut args = vec!["-I", chain, "1"];
        args.extend(rule.iter().map(String::as_str));
        iptables(&args)?;
    }
    Ok(())
}

/// Removes the pod's jumps and chains; missing ones are skipped. Errors are reported to
/// `warn`, and every step is tried.
pub fn teardown(uuid: &str, warn: &mut dyn FnMut(String)) {
    let (dnat, snat) = chains(uuid);
    let existing = match iptables(&["-S"]) {
        Ok(s) => s,
        Err(e) => {
            warn(format!("cannot remove the forwarded ports: {e:#}"));
            return;
        }
    };
    // A jump that is not there makes `-D` fail: that ends the loop. Twice covers a jump
    // inserted twice by an interrupted setup and retried gc.
    for (chain, rule) in jumps(&dnat, &snat) {
        let mut args = vec!["-D", chain];
        args.extend(rule.iter().map(String::as_str));
        for _ in 0..2 {
            if iptables(&args).is_err() {
                break;
            }
        }
    }
    for chain in [&dnat, &snat] {
        if existing.lines().any(|l| l.trim() == format!("-N {chain}")) {
            for args in [["-F", chain.as_str()], ["-X", chain.as_str()]] {
                if let Err(e) = iptables(&args) {
                    warn(format!("{e:#}"));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fwd(host_ip: Option<&str>, port: u32) -> Forward {
        Forward {
            name: "http".into(),
            protocol: "tcp".into(),
            host_ip: host_ip.map(|s| s.parse().unwrap()),
            host_port: port,
            pod_port: 80,
        }
    }

    #[test]
    fn rules_as_rkt_made_them() {
        let (d, s) = chains("0b3c1bc6-8b1a-4b59-a41a-3f1c8b7cbbbd");
        assert_eq!(d, "RKT-PFWD-DNAT-0b3c1bc6");
        let rules = port_rules(&fwd(None, 8080), "172.16.28.5".parse().unwrap(), &d, &s);
        assert_eq!(
            rules[0].1.join(" "),
            "-d 0.0.0.0/0 -p tcp --dport 8080 -j DNAT --to-destination 172.16.28.5:80"
        );
        assert_eq!(
            rules[1].1.join(" "),
            "-p tcp -s 127.0.0.1 -d 172.16.28.5 --dport 80 -j MASQUERADE"
        );
    }

    #[test]
    fn finds_ports_forwarded_already() {
        let rules = "-N RKT-PFWD-DNAT-aaaaaaaa\n-A RKT-PFWD-DNAT-aaaaaaaa -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.16.28.9:80\n";
        assert!(already_forwarded(rules, &[fwd(None, 8080)]).is_some());
        assert!(already_forwarded(rules, &[fwd(Some("127.0.0.1"), 8080)]).is_some());
        assert!(already_forwarded(rules, &[fwd(None, 8081)]).is_none());
        let udp = Forward {
            protocol: "udp".into(),
            ..fwd(None, 8080)
        };
        assert!(already_forwarded(rules, &[udp]).is_none());
    }
}
