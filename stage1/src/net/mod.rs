//! Pod networking with CNI plugins, as rkt's stage1 did it (docs/stage-contract.md,
//! "Networking"): a named network namespace per pod, one plugin call per network, results in
//! `net-info.json`, forwarded ports in iptables chains of the pod's own, and a teardown that
//! the gc entrypoint (or a failed setup) runs from what the pod directory records.
mod cni;
pub mod conf;
mod portfwd;
mod sys;

use std::io::Write;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use aci::schema::{App, PodManifest};
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::contract::{NETNS_DIR, NETNS_FILE, NET_DIR, NET_INFO, PORT_FORWARDING, RKT_RESOLV_CONF};
pub use conf::NetMode;
pub use portfwd::Forward;

/// Where stage1 and the plugins act: the pod and the operator's configuration.
pub struct NetContext<'a> {
    pub pod_dir: &'a Path,
    pub s1root: &'a Path,
    pub uuid: &'a str,
    pub local_config: &'a Path,
    pub debug: bool,
}

impl NetContext<'_> {
    fn user_conf_dir(&self) -> PathBuf {
        self.local_config.join("net.d")
    }

    /// Where plugins are looked for, first match wins (also their `CNI_PATH`): the operator's
    /// `net.d`, then `$RKT_NET_PLUGIN_PATH` (`:`-separated) when set, else rkt's plugin
    /// directory, Debian's and the CNI project's. rkt also searched the stage1 root; ours is
    /// writable by the pod, so it is never searched.
    fn plugin_dirs(&self) -> Vec<PathBuf> {
        let mut dirs = vec![self.user_conf_dir()];
        match std::env::var_os("RKT_NET_PLUGIN_PATH") {
            Some(p) if !p.is_empty() => dirs.extend(std::env::split_paths(&p)),
            _ => dirs.extend(
                ["/usr/lib/rkt/plugins/net", "/usr/lib/cni", "/opt/cni/bin"].map(PathBuf::from),
            ),
        }
        dirs
    }

    fn log(&self, msg: impl AsRef<str>) {
        if self.debug {
            eprintln!("stage1: networking: {}", msg.as_ref());
        }
    }
}

/// One entry of `net-info.json`, with rkt's field names (`rkt status --format=json` shows
/// them as they are).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NetInfo {
    #[serde(rename = "netName")]
    pub net_name: String,
    #[serde(rename = "netConf")]
    pub net_conf: String,
    #[serde(rename = "pluginPath")]
    pub plugin_path: String,
    #[serde(rename = "ifName")]
    pub if_name: String,
    pub ip: String,
    pub args: String,
    pub mask: String,
}

/// The pod's network namespace, while the run entrypoint starts the pod.
pub struct PodNetwork {
    netns: OwnedFd,
    own_pid_ns: sys::OwnPidNs,
    host_ip: Option<Ipv4Addr>,
}

impl PodNetwork {
    /// The host's address on the pod's forwarding network (the first that masquerades, else
    /// the last): where the pod reaches services on the host, such as the metadata service.
    pub fn host_ip(&self) -> Option<Ipv4Addr> {
        self.host_ip
    }

    /// The namespace for the pod's PID 1 to join; open as long as `self` lives.
    pub fn netns_fd(&self) -> RawFd {
        self.netns.as_raw_fd()
    }

    /// Undoes the setup after a later step failed. Errors are only reported: the pod's failure
    /// is what the caller reports.
    pub fn teardown(&self, ctx: &NetContext<'_>) {
        if let Err(e) = self.own_pid_ns.restore_for_children() {
            eprintln!("stage1: warning: cannot tear the network down: {e:#}");
            return;
        }
        teardown(ctx);
    }

    /// Tears the network down after the pod exited, in a detached process, so that the pod's
    /// exit status reaches the caller at once. That process holds the lock of the pod's `net/`
    /// (taken here, before the caller can exit) until it is done, and a gc waits for it there.
    /// It works relative to its working directory, the pod directory, which gc may rename.
    /// Anything it cannot do stays recorded for gc; its messages go to `net/teardown.log`.
    pub fn teardown_after_exit(self, ctx: &NetContext<'_>) {
        teardown_detached(&self.own_pid_ns, ctx);
    }
}

/// [`PodNetwork::teardown_after_exit`] for a process that never held the [`PodNetwork`]: the
/// cleanup after the waiter (docs/stage-contract.md, "The waiter").
pub fn teardown_after_exit(ctx: &NetContext<'_>) {
    match sys::OwnPidNs::open() {
        Ok(own) => teardown_detached(&own, ctx),
        Err(e) => eprintln!("stage1: networking: teardown left to gc: {e:#}"),
    }
}

fn teardown_detached(own_pid_ns: &sys::OwnPidNs, ctx: &NetContext<'_>) {
    let started = own_pid_ns.restore_for_children().and_then(|()| {
        let lock = sys::lock_dir(&ctx.pod_dir.join(NET_DIR))?;
        let here = NetContext {
            pod_dir: Path::new("."),
            s1root: Path::new(crate::contract::STAGE1_ROOTFS),
            ..*ctx
        };
        let log = ctx.pod_dir.join(NET_DIR).join("teardown.log");
        sys::spawn_detached(&lock, &log, || teardown_locked(&here))
    });
    if let Err(e) = started {
        // gc will do it.
        if ctx.debug {
            eprintln!("stage1: networking: teardown left to gc: {e:#}");
        }
    }
}

/// `resolv=<mode>` of `--dns-conf-mode`: only `default` lets a network's DNS in.
pub fn dns_from_network(dns_conf_mode: Option<&str>) -> bool {
    dns_conf_mode
        .unwrap_or("")
        .split(',')
        .find_map(|p| p.strip_prefix("resolv="))
        .is_none_or(|m| m == "default")
}

/// The pod's `--port`s matched with its apps' ports (rkt's rules: the name must belong to
/// exactly one app; a host port and protocol only once). `app` gives each app's app section.
pub fn forwards(manifest: &PodManifest, app: &dyn Fn(&str) -> Result<App>) -> Result<Vec<Forward>> {
    let mut out: Vec<Forward> = Vec::new();
    for ep in &manifest.ports {
        let port = match &ep.pod_port {
            Some(p) => p.clone(),
            None => {
                let mut found = None;
                for ra in &manifest.apps {
                    if let Some(p) = app(&ra.name)?.ports.iter().find(|p| p.name == ep.name) {
                        if found.is_some() {
                            bail!("port name {:?} is defined by several apps", ep.name);
                        }
                        found = Some(p.clone());
                    }
                }
                found.ok_or_else(|| {
                    anyhow!("port name {:?} could not be found in any apps", ep.name)
                })?
            }
        };
        let host_ip = match ep.host_ip.as_deref() {
            None | Some("") => None,
            Some(ip) => Some(ip.parse::<Ipv4Addr>().map_err(|_| {
                anyhow!("--port {}: host IP {ip:?} is not an IPv4 address", ep.name)
            })?),
        };
        let f = Forward {
            name: ep.name.clone(),
            protocol: if port.protocol.is_empty() {
                "tcp".into()
            } else {
                port.protocol.clone()
            },
            host_ip,
            host_port: ep.host_port,
            pod_port: port.port,
        };
        if let Some(other) = out.iter().find(|o| {
            o.protocol == f.protocol
                && o.host_port == f.host_port
                && (o.host_ip.is_none() || f.host_ip.is_none() || o.host_ip == f.host_ip)
        }) {
            bail!(
                "port {}-{}:{} already mapped to pod port {}",
                f.protocol,
                f.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED),
                f.host_port,
                other.pod_port
            );
        }
        out.push(f);
    }
    Ok(out)
}

/// Sets up a contained network: `Ok(None)` for `host` and `none` (the pod's PID 1 then keeps
/// the host's namespace, or makes one with only `lo`). On error, everything made so far is
/// already torn down.
pub fn setup(
    ctx: &NetContext<'_>,
    mode: &NetMode,
    forwards: &[Forward],
    dns_from_net: bool,
) -> Result<Option<PodNetwork>> {
    let NetMode::Contained(list) = mode else {
        return Ok(None);
    };
    let confs = conf::load(list, &ctx.user_conf_dir(), &mut |w| {
        eprintln!("stage1: networking: {w}")
    })
    .context("error loading network definitions")?;
    let own_pid_ns = sys::OwnPidNs::open()?;
    match attach(ctx, list, &confs, forwards, dns_from_net) {
        Ok((netns, host_ip)) => Ok(Some(PodNetwork {
            netns,
            own_pid_ns,
            host_ip,
        })),
        Err(e) => {
            teardown(ctx);
            Err(e)
        }
    }
}

/// The pod's netns path: `/var/run/netns/cni-<uuid>`, like `ip netns` names.
fn netns_path(uuid: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(format!("cni-{uuid}"))
}

/// Creates the namespace and attaches every network, then forwards the ports; returns the
/// namespace, open. Records each step before taking it (see [`teardown`]).
fn attach(
    ctx: &NetContext<'_>,
    list: &conf::NetList,
    confs: &[conf::NetConf],
    forwards: &[Forward],
    dns_from_net: bool,
) -> Result<(OwnedFd, Option<Ipv4Addr>)> {
    let start = std::time::Instant::now();
    let netns = netns_path(ctx.uuid);
    sys::make_shared_dir(Path::new(NETNS_DIR))?;
    // Recorded first: whatever happens next, gc knows what to remove.
    write_file(
        &ctx.pod_dir.join(NETNS_FILE),
        netns.as_os_str().as_encoded_bytes(),
    )?;
    sys::create_netns(&netns)?;
    let net_dir = ctx.pod_dir.join(NET_DIR);
    std::fs::create_dir_all(&net_dir)
        .with_context(|| format!("cannot create {}", net_dir.display()))?;
    let mut dns = NetworkDns {
        resolv: ctx.s1root.join(RKT_RESOLV_CONF),
        wanted: dns_from_net,
        written: false,
    };
    dns.written = dns.resolv.symlink_metadata().is_ok();
    let mut infos: Vec<NetInfo> = Vec::new();
    let mut results = Vec::new();
    let mut in_plugins = std::time::Duration::ZERO;
    for (i, conf) in confs.iter().enumerate() {
        let (result, took) = add_network(ctx, &netns, conf, &format!("eth{i}"), list, &mut infos)?;
        in_plugins += took;
        dns.offer(&conf.name, &result.dns)?;
        results.push(result);
    }
    save_info(ctx.pod_dir, &infos, false)?;
    if !forwards.is_empty() {
        forward_ports(ctx, confs, &results, forwards)?;
    }
    let netns = sys::open_ns(&netns)?;
    let host_ip = results.get(forwarding_net(confs)).and_then(|r| r.gateway);
    // `make bench` reads this line: our cost is the difference.
    ctx.log(format!(
        "networks set up in {:.2} ms, {:.2} ms of it in plugins",
        start.elapsed().as_secs_f64() * 1000.0,
        in_plugins.as_secs_f64() * 1000.0
    ));
    Ok((netns, host_ip))
}

/// The network that carries forwarded ports and host services: rkt's choice, the first that
/// masquerades, else the last one.
fn forwarding_net(confs: &[conf::NetConf]) -> usize {
    confs
        .iter()
        .position(|c| c.ip_masq)
        .unwrap_or(confs.len().saturating_sub(1))
}

/// Copies the network's conf into the pod's `net/`, records it (`pending.json`) and calls the
/// plugin's ADD; `infos` gets the network with its address. Also returns the plugin's time.
fn add_network(
    ctx: &NetContext<'_>,
    netns: &Path,
    conf: &conf::NetConf,
    if_name: &str,
    list: &conf::NetList,
    infos: &mut Vec<NetInfo>,
) -> Result<(cni::AddResult, std::time::Duration)> {
    let net_dir = ctx.pod_dir.join(NET_DIR);
    let mut copy_name = conf.file_name.clone();
    if net_dir.join(&copy_name).exists() {
        copy_name = format!("{if_name}-{copy_name}");
    }
    write_file(&net_dir.join(&copy_name), &conf.bytes)?;
    let plugin_dirs = ctx.plugin_dirs();
    let plugin = cni::find_plugin(&conf.plugin, &plugin_dirs).ok_or_else(|| {
        anyhow!(
            "error adding network {:?}: could not find plugin {:?} in {} (Debian's containernetworking-plugins installs the standard ones in /usr/lib/cni)",
            conf.name,
            conf.plugin,
            std::env::join_paths(&plugin_dirs)
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default()
        )
    })?;
    let mut info = NetInfo {
        net_name: conf.name.clone(),
        // Relative to the pod directory, as rkt recorded it: the directory moves.
        net_conf: format!("{NET_DIR}/{copy_name}"),
        plugin_path: plugin.to_string_lossy().into_owned(),
        if_name: if_name.to_string(),
        args: list.args(&conf.name),
        ..NetInfo::default()
    };
    // Recorded before the call: a plugin that fails halfway is asked to undo it too.
    infos.push(info.clone());
    save_info(ctx.pod_dir, infos, true)?;
    ctx.log(format!(
        "adding network {} with plugin {}",
        conf.name,
        plugin.display()
    ));
    let plugin_start = std::time::Instant::now();
    let out = cni::exec(&cni::Call {
        command: cni::CniCommand::Add,
        plugin: &plugin,
        conf: &conf.bytes,
        container_id: ctx.uuid,
        netns: &netns.to_string_lossy(),
        if_name,
        args: &info.args,
        search_path: &plugin_dirs,
    })
    .with_context(|| format!("error adding network {:?}", conf.name))?;
    let took = plugin_start.elapsed();
    let result =
        cni::parse_result(&out).with_context(|| format!("error adding network {:?}", conf.name))?;
    if let Some((ip, len)) = result.ip {
        info.ip = ip.to_string();
        info.mask = cni::mask(len).to_string();
    }
    *infos.last_mut().expect("pushed above") = info;
    Ok((result, took))
}

/// The pod's resolv.conf from the first network that returns DNS settings, as rkt made it.
struct NetworkDns {
    resolv: PathBuf,
    /// No `--dns`: networks may supply it.
    wanted: bool,
    /// It exists already (stage0's, or an earlier network's).
    written: bool,
}

impl NetworkDns {
    fn offer(&mut self, net: &str, dns: &cni::Dns) -> Result<()> {
        if dns.is_empty() || !self.wanted {
            return Ok(());
        }
        if self.written {
            eprintln!(
                "stage1: networking: warning: network {net} plugin specified DNS configuration, but DNS already supplied"
            );
            return Ok(());
        }
        let text = dns.resolv_conf(&format!("Generated by rkt from network {net}"));
        write_new_file(&self.resolv, text.as_bytes())?;
        self.written = true;
        Ok(())
    }
}

/// Forwards the pod's ports through the first network that masquerades, else the last one
/// (rkt's choice).
fn forward_ports(
    ctx: &NetContext<'_>,
    confs: &[conf::NetConf],
    results: &[cni::AddResult],
    forwards: &[Forward],
) -> Result<()> {
    let i = forwarding_net(confs);
    let Some(result) = results.get(i) else {
        bail!("cannot forward ports: the pod has no network");
    };
    let Some((pod_ip, _)) = result.ip else {
        bail!(
            "cannot forward ports: network {:?} gave the pod no IPv4 address",
            confs[i].name
        );
    };
    // Connections from the host's own 127.0.0.1 are routed to the pod through the interfaces
    // holding the network's host address. Other pods' interfaces share that address (ptp); one
    // torn down since it was listed is simply gone.
    if let Some(gw) = result.gateway {
        for iface in sys::interfaces_with(gw)? {
            let knob = format!("/proc/sys/net/ipv4/conf/{iface}/route_localnet");
            match std::fs::write(&knob, "1") {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                other => other.with_context(|| format!("cannot write {knob}"))?,
            }
        }
    }
    write_file(&ctx.pod_dir.join(PORT_FORWARDING), b"")?;
    portfwd::setup(ctx.uuid, forwards, pod_ip).context("error forwarding ports")
}

/// Writes `net-info.json` (replacing it whole). `pending`: the last entry is a network being
/// added, kept in a separate file so that `rkt list` never shows half a setup.
fn save_info(pod_dir: &Path, infos: &[NetInfo], pending: bool) -> Result<()> {
    let json = serde_json::to_vec(infos).context("cannot encode net-info.json")?;
    if pending {
        return write_file(&pod_dir.join(NET_DIR).join("pending.json"), &json);
    }
    let tmp = pod_dir.join(format!("{NET_INFO}.tmp"));
    write_file(&tmp, &json)?;
    std::fs::rename(&tmp, pod_dir.join(NET_INFO))
        .with_context(|| format!("cannot write {}", pod_dir.join(NET_INFO).display()))?;
    let _ = std::fs::remove_file(pod_dir.join(NET_DIR).join("pending.json"));
    Ok(())
}

fn write_file(path: &Path, data: &[u8]) -> Result<()> {
    std::fs::write(path, data).with_context(|| format!("cannot write {}", path.display()))
}

/// Creates a file in the stage1 root, never through a symlink or over an existing file.
fn write_new_file(path: &Path, data: &[u8]) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(data)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// What the pod directory says was attached: `net-info.json`, or the pending list of a setup
/// that stopped halfway.
fn recorded(pod_dir: &Path) -> Vec<NetInfo> {
    [
        pod_dir.join(NET_DIR).join("pending.json"),
        pod_dir.join(NET_INFO),
    ]
    .iter()
    .find_map(|p| std::fs::read(p).ok())
    .and_then(|b| serde_json::from_slice(&b).ok())
    .unwrap_or_default()
}

/// Removes what the pod directory records (see [`teardown_locked`]), under the lock of its
/// `net/`, so that gc and the teardown after the pod's exit never run at the same time.
pub fn teardown(ctx: &NetContext<'_>) {
    let net_dir = ctx.pod_dir.join(NET_DIR);
    let _lock = match net_dir.is_dir() {
        true => match sys::lock_dir(&net_dir) {
            Ok(l) => Some(l),
            Err(e) => {
                eprintln!("stage1: networking: warning: {e:#}");
                None
            }
        },
        false => None,
    };
    teardown_locked(ctx);
}

/// Removes what the pod directory records, in reverse order of setup: forwarded ports, each
/// network (CNI DEL, then its conf copy, so a second teardown skips it), the namespace.
/// Missing pieces are skipped; failures are reported and the rest is still tried.
fn teardown_locked(ctx: &NetContext<'_>) {
    let mut warn = |msg: String| eprintln!("stage1: networking: warning: {msg}");
    let marker = ctx.pod_dir.join(PORT_FORWARDING);
    if marker.exists() {
        portfwd::teardown(ctx.uuid, &mut warn);
        let _ = std::fs::remove_file(&marker);
    }
    let netns = std::fs::read_to_string(ctx.pod_dir.join(NETNS_FILE))
        .ok()
        .map(PathBuf::from)
        // Only a path this stage1 made is ever unmounted or removed.
        .filter(|p| *p == netns_path(ctx.uuid));
    let netns_str = netns
        .as_ref()
        .filter(|p| p.exists())
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let plugin_dirs = ctx.plugin_dirs();
    let net_dir = ctx.pod_dir.join(NET_DIR);
    for info in recorded(ctx.pod_dir).iter().rev() {
        // Only copies in the pod's own net/ directory are read.
        let Some(name) = info
            .net_conf
            .strip_prefix(&format!("{NET_DIR}/"))
            .filter(|n| !n.contains('/') && !n.starts_with('.'))
        else {
            continue;
        };
        let copy = net_dir.join(name);
        let Ok(bytes) = std::fs::read(&copy) else {
            continue;
        };
        // The plugin that added the network, else the one found now (gc may be given
        // another --local-config than run was).
        let recorded_plugin = Path::new(&info.plugin_path);
        let plugin = if recorded_plugin.is_absolute() && recorded_plugin.is_file() {
            Some(recorded_plugin.to_path_buf())
        } else {
            match conf::parse_conf("", &bytes, &info.net_conf) {
                Ok(c) => cni::find_plugin(&c.plugin, &plugin_dirs),
                Err(e) => {
                    warn(format!("{e:#}"));
                    None
                }
            }
        };
        let Some(plugin) = plugin else {
            warn(format!(
                "cannot remove network {:?}: its plugin is gone",
                info.net_name
            ));
            continue;
        };
        ctx.log(format!("removing network {}", info.net_name));
        let del = cni::exec(&cni::Call {
            command: cni::CniCommand::Del,
            plugin: &plugin,
            conf: &bytes,
            container_id: ctx.uuid,
            netns: &netns_str,
            if_name: &info.if_name,
            args: &info.args,
            search_path: &plugin_dirs,
        });
        match del {
            Ok(_) => {
                let _ = std::fs::remove_file(&copy);
            }
            Err(e) => warn(format!("error deleting network {:?}: {e:#}", info.net_name)),
        }
    }
    if let Some(path) = netns {
        match sys::destroy_netns(&path) {
            Ok(()) => {
                let _ = std::fs::remove_file(ctx.pod_dir.join(NETNS_FILE));
            }
            Err(e) => warn(format!("{e:#}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_modes() {
        assert!(dns_from_network(None));
        assert!(dns_from_network(Some("resolv=default,hosts=default")));
        assert!(!dns_from_network(Some("resolv=none,hosts=default")));
        assert!(!dns_from_network(Some("resolv=stage0,hosts=default")));
        assert!(!dns_from_network(Some("resolv=host,hosts=default")));
    }

    #[test]
    fn net_info_has_rkt_field_names_in_rkt_order() {
        let info = NetInfo {
            net_name: "default".into(),
            net_conf: "net/99-default.conf".into(),
            plugin_path: "/usr/lib/cni/ptp".into(),
            if_name: "eth0".into(),
            ip: "172.16.28.5".into(),
            args: String::new(),
            mask: "255.255.255.0".into(),
        };
        assert_eq!(
            serde_json::to_string(&info).unwrap(),
            r#"{"netName":"default","netConf":"net/99-default.conf","pluginPath":"/usr/lib/cni/ptp","ifName":"eth0","ip":"172.16.28.5","args":"","mask":"255.255.255.0"}"#
        );
    }

    fn app_with_port(name: &str, port: u32) -> App {
        App {
            ports: vec![aci::schema::Port {
                name: name.into(),
                protocol: "tcp".into(),
                port,
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn forwards_follow_rkts_rules() {
        let mut m = PodManifest::new();
        for n in ["a", "b"] {
            m.apps.push(aci::schema::RuntimeApp {
                name: n.into(),
                ..Default::default()
            });
        }
        m.ports.push(aci::schema::ExposedPort {
            name: "http".into(),
            host_port: 8080,
            host_ip: None,
            pod_port: None,
        });
        let one = |n: &str| -> Result<App> {
            Ok(if n == "a" {
                app_with_port("http", 80)
            } else {
                App::default()
            })
        };
        let f = forwards(&m, &one).unwrap();
        assert_eq!((f[0].host_port, f[0].pod_port), (8080, 80));
        let both = |_: &str| -> Result<App> { Ok(app_with_port("http", 80)) };
        assert!(forwards(&m, &both)
            .unwrap_err()
            .to_string()
            .contains("several apps"));
        let none = |_: &str| -> Result<App> { Ok(App::default()) };
        assert!(forwards(&m, &none).is_err());
        let again = m.ports[0].clone();
        m.ports.push(again);
        assert!(forwards(&m, &one)
            .unwrap_err()
            .to_string()
            .contains("already mapped"));
    }
}
