//! Pod networking through the real CNI plugins (Debian's containernetworking-plugins) and
//! iptables. Traffic goes only to this machine: loopback, the host's own addresses and the pod
//! networks the tests create. Every test checks only what its own pods own (their netns, host
//! veths, NAT rules and leases, found by pod UUID), since other tests run at the same time.
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use aci::schema::Port;
use rkt_tests::{require_root, ImageSpec, TestEnv};

/// Output of a host command (ip, iptables-save), as text.
fn host(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e} (install iproute2 and iptables)"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A number for this test process, to make names and subnets its own.
fn unique(salt: u32) -> u32 {
    (std::process::id().wrapping_mul(31).wrapping_add(salt * 7)) % 250 + 1
}

/// Everything on the host that belongs to the pod `uuid`: its netns, NAT rules (CNI's
/// masquerading and rkt's port forwarding name the pod), IPAM leases, and the host veths
/// given in `veths`.
pub fn owned_by(uuid: &str, veths: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    for ns in host("ip", &["netns", "list"]).lines() {
        if ns.contains(uuid) {
            found.push(format!("netns {ns}"));
        }
    }
    for line in host("iptables-save", &["-t", "nat"]).lines() {
        if line.contains(uuid) || line.contains(&format!("RKT-PFWD-DNAT-{}", &uuid[..8])) {
            found.push(format!("iptables {line}"));
        }
    }
    if let Ok(nets) = std::fs::read_dir("/var/lib/cni/networks") {
        for net in nets.flatten() {
            for lease in std::fs::read_dir(net.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                if std::fs::read_to_string(lease.path()).is_ok_and(|c| c.contains(uuid)) {
                    found.push(format!("lease {}", lease.path().display()));
                }
            }
        }
    }
    let links = host("ip", &["-o", "link"]);
    for veth in veths {
        if links.contains(&format!(": {veth}@")) {
            found.push(format!("link {veth}"));
        }
    }
    found
}

/// The host-side interface routing to `ip` (the pod's end of a ptp veth).
fn host_veth(ip: &str) -> String {
    let route = host("ip", &["-o", "route", "show", &format!("{ip}/32")]);
    route
        .split_whitespace()
        .skip_while(|w| *w != "dev")
        .nth(1)
        .unwrap_or_else(|| panic!("no host route to {ip}: {route:?}"))
        .to_string()
}

/// `rkt status --format=json` once the pod runs and has an address on every network.
fn running_networks(env: &TestEnv, uuid: &str, args: &[&str]) -> Vec<serde_json::Value> {
    let mut nets = Vec::new();
    let ready = TestEnv::wait_for(Duration::from_secs(20), || {
        let mut all = args.to_vec();
        all.extend(["status", "--format=json", uuid]);
        let st = env.rkt(&all);
        let Ok(json) = serde_json::from_str::<serde_json::Value>(&st.stdout) else {
            return false;
        };
        nets = json["networks"].as_array().cloned().unwrap_or_default();
        json["state"] == "running" && !nets.is_empty() && nets.iter().all(|n| n["ip"] != "")
    });
    assert!(ready, "pod {uuid} never showed its networks");
    nets
}

/// A pod running in the background (`rkt run` with `--uuid-file-save`).
struct Background {
    child: Child,
    uuid: String,
}

fn start(env: &TestEnv, global: &[&str], args: &[&str]) -> Background {
    let uuid_file = env
        .work()
        .join(format!("uuid-{}", rand_suffix(env, "uuid")));
    let save = format!("--uuid-file-save={}", uuid_file.display());
    let mut all: Vec<&str> = global.to_vec();
    all.extend(["--insecure-options=image", "run", &save]);
    all.extend(args);
    let child = env
        .cmd(&all)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rkt run");
    let uuid = TestEnv::wait_uuid(&uuid_file);
    Background { child, uuid }
}

/// A file name not used yet in the work directory.
fn rand_suffix(env: &TestEnv, prefix: &str) -> usize {
    (0..)
        .find(|i| !env.work().join(format!("{prefix}-{i}")).exists())
        .expect("some free name")
}

impl Background {
    /// Stops the pod (SIGTERM to rkt, as an init system would) and waits for rkt to exit.
    fn stop(self) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait_with_output();
    }
}

/// An image whose app serves `/www` over HTTP on port 80, named `http`.
fn http_image(env: &TestEnv, name: &str, body: &str) -> String {
    let mut spec = ImageSpec::new(
        &format!("example.com/{name}"),
        &["/bin/httpd", "-f", "-p", "80", "-h", "/www"],
    )
    .file("www/index.html", 0o644, body.as_bytes());
    spec.app().ports.push(Port {
        name: "http".into(),
        protocol: "tcp".into(),
        port: 80,
        ..Default::default()
    });
    env.image(&spec, &format!("{name}.aci"))
}

fn shell_image(env: &TestEnv, name: &str) -> String {
    env.image(
        &ImageSpec::shell(&format!("example.com/{name}"), "true"),
        &format!("{name}.aci"),
    )
}

/// A plain HTTP GET from the host; the response body.
fn try_http_get(addr: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(b"GET /index.html HTTP/1.0\r\nHost: test\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or(response))
}

/// [`try_http_get`] once the app listens (the pod has its address before its app runs).
pub fn http_get(addr: &str) -> String {
    let mut last = None;
    TestEnv::wait_for(Duration::from_secs(20), || {
        last = Some(try_http_get(addr));
        matches!(last, Some(Ok(_)))
    });
    match last {
        Some(Ok(body)) => body,
        other => panic!("GET http://{addr}/index.html: {other:?}"),
    }
}

/// A free TCP port on the host (the kernel's choice, released again).
pub fn free_port() -> u16 {
    TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One of the host's own non-loopback IPv4 addresses.
pub fn host_address() -> String {
    host("ip", &["-o", "-4", "addr", "show", "scope", "global"])
        .lines()
        .filter(|l| !l.contains(" veth") && !l.contains("172.16.28.") && !l.contains("172.31."))
        .find_map(|l| {
            l.split_whitespace()
                .skip_while(|w| *w != "inet")
                .nth(1)
                .and_then(|a| a.split('/').next())
                .map(str::to_string)
        })
        .expect("the host has an IPv4 address")
}

#[test]
fn default_net_reaches_the_host_and_gc_leaves_nothing_behind() {
    if !require_root("default_net_reaches_the_host_and_gc_leaves_nothing_behind") {
        return;
    }
    let env = TestEnv::new();
    // A server on the host side of the pod network (any address: the pod dials the gateway).
    let server = TcpListener::bind("0.0.0.0:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let serve = std::thread::spawn(move || {
        let (mut conn, peer) = server.accept().unwrap();
        let mut request = [0u8; 1024];
        let _ = conn.read(&mut request);
        conn.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 15\r\n\r\nhello-from-host")
            .unwrap();
        peer.ip().to_string()
    });
    let img = shell_image(&env, "client");
    let pod = start(&env, &[], &[&img, "--exec=/bin/sleep", "--", "600"]);
    let nets = running_networks(&env, &pod.uuid, &[]);
    let script =
        format!("ip -o -4 addr show eth0; ip route; wget -q -O - http://172.16.28.1:{port}/");
    let inside = env.rkt(&["enter", &pod.uuid, "/bin/sh", "-c", &script]);
    let stdout = inside.ok().to_string();
    assert_eq!(nets.len(), 1);
    assert_eq!(nets[0]["netName"], "default");
    assert_eq!(nets[0]["ifName"], "eth0");
    assert_eq!(nets[0]["mask"], "255.255.255.0");
    assert_eq!(nets[0]["pluginPath"], "/usr/lib/cni/ptp");
    let ip = nets[0]["ip"].as_str().unwrap().to_string();
    assert!(ip.starts_with("172.16.28."), "{nets:?}");
    // The host saw the pod's own address: the gateway route, no NAT, on the way in.
    assert_eq!(serve.join().unwrap(), ip);
    let status = env.rkt(&["status", &pod.uuid]);
    assert!(
        status
            .ok()
            .contains(&format!("networks=default:ip4={ip}\n")),
        "{status:?}"
    );
    let list = env.rkt(&["list", "--no-legend"]);
    assert!(list.ok().contains(&format!("default:ip4={ip}")), "{list:?}");
    let veth = host_veth(&ip);
    let held = owned_by(&pod.uuid, std::slice::from_ref(&veth));
    // The netns, the masquerading rules, the lease and the veth.
    for kind in ["netns", "iptables", "lease", "link"] {
        assert!(
            held.iter().any(|h| h.starts_with(kind)),
            "no {kind} while the pod runs: {held:?}"
        );
    }
    let nat = host("iptables-save", &["-t", "nat"]);
    assert!(
        nat.lines()
            .any(|l| l.contains(&pod.uuid) && l.contains("-j MASQUERADE")),
        "no masquerading for the pod: {nat}"
    );
    let uuid = pod.uuid.clone();
    pod.stop();
    assert!(stdout.contains(&format!("inet {ip}/24")), "{stdout}");
    assert!(stdout.contains("default via 172.16.28.1"), "{stdout}");
    assert!(stdout.contains("hello-from-host"), "{stdout}");
    // The pod's end takes its network down, without waiting for gc.
    let veths = [veth];
    assert!(
        TestEnv::wait_for(Duration::from_secs(20), || owned_by(&uuid, &veths)
            .is_empty()),
        "still held after the pod exited: {:?}",
        owned_by(&uuid, &veths)
    );
    env.rkt(&["gc", "--grace-period=0s"]).ok();
    assert_eq!(owned_by(&uuid, &veths), Vec::<String>::new());
}

#[test]
fn gc_takes_down_the_network_of_a_pod_whose_rkt_was_killed() {
    if !require_root("gc_takes_down_the_network_of_a_pod_whose_rkt_was_killed") {
        return;
    }
    let env = TestEnv::new();
    let img = shell_image(&env, "killed");
    let mut pod = start(&env, &[], &[&img, "--exec=/bin/sleep", "--", "600"]);
    let ip = running_networks(&env, &pod.uuid, &[])[0]["ip"]
        .as_str()
        .unwrap()
        .to_string();
    let veths = [host_veth(&ip)];
    // SIGKILL: stage1 gets no chance to clean up; its pod dies with it.
    pod.child.kill().unwrap();
    pod.child.wait().unwrap();
    assert!(TestEnv::wait_for(Duration::from_secs(20), || {
        env.rkt(&["status", &pod.uuid])
            .stdout
            .contains("state=exited")
    }));
    let held = owned_by(&pod.uuid, &veths);
    assert!(held.iter().any(|h| h.starts_with("netns")), "{held:?}");
    assert!(held.iter().any(|h| h.starts_with("lease")), "{held:?}");
    env.rkt(&["gc", "--grace-period=0s"]).ok();
    assert_eq!(owned_by(&pod.uuid, &veths), Vec::<String>::new());
}

#[test]
fn two_pods_on_the_default_net_reach_each_other() {
    if !require_root("two_pods_on_the_default_net_reach_each_other") {
        return;
    }
    let env = TestEnv::new();
    let server = start(&env, &[], &[&http_image(&env, "web", "pod-to-pod\n")]);
    let ip = running_networks(&env, &server.uuid, &[])[0]["ip"]
        .as_str()
        .unwrap()
        .to_string();
    let client = shell_image(&env, "client2");
    let got = env.run(&[
        &client,
        "--exec=/bin/wget",
        "--",
        "-q",
        "-O",
        "-",
        &format!("http://{ip}/index.html"),
    ]);
    assert_eq!(got.ok(), "pod-to-pod\n");
    server.stop();
}

#[test]
fn net_none_has_only_loopback_and_net_host_the_hosts_interfaces() {
    if !require_root("net_none_has_only_loopback_and_net_host_the_hosts_interfaces") {
        return;
    }
    let env = TestEnv::new();
    let img = shell_image(&env, "links");
    let none = env.run(&["--net=none", &img, "--exec=/bin/ls", "--", "/sys/class/net"]);
    assert_eq!(none.ok(), "lo\n");
    let uuid = env.rkt(&["list", "--no-legend", "--full"]).ok()[..36].to_string();
    let status = env.rkt(&["status", &uuid]);
    assert!(status.ok().contains("networks=\n"), "{status:?}");
    let json = env.rkt(&["status", "--format=json", &uuid]);
    assert!(!json.ok().contains("networks"), "{json:?}");

    // The host's default-route interface is a stable one to look for.
    let default_dev = host("ip", &["-o", "route", "show", "default"])
        .split_whitespace()
        .skip_while(|w| *w != "dev")
        .nth(1)
        .expect("the host has a default route")
        .to_string();
    let hostnet = env.run(&["--net=host", &img, "--exec=/bin/ls", "--", "/sys/class/net"]);
    let names: Vec<&str> = hostnet.ok().lines().collect();
    assert!(names.contains(&default_dev.as_str()), "{names:?}");
}

/// A user network of the bridge plugin on a subnet and bridge of this test's own, with its
/// leases in the test's directory.
struct UserNet {
    name: String,
    bridge: String,
    prefix: String,
    config: PathBuf,
}

impl UserNet {
    fn new(env: &TestEnv, salt: u32, file: &str, extra: &str) -> UserNet {
        let n = unique(salt);
        let name = format!("rkt-test-br{salt}-{n}");
        let bridge = format!("rktbr{salt}x{n}");
        let prefix = format!("10.{}.{n}", 200 + salt);
        let config = env.tmp.path().join("config");
        std::fs::create_dir_all(config.join("net.d")).unwrap();
        let conf = format!(
            r#"{{"cniVersion":"0.1.0","name":"{name}","type":"bridge","bridge":"{bridge}","isGateway":true,
  "ipam":{{"type":"host-local","subnet":"{prefix}.0/24","dataDir":"{}"}}{extra}}}"#,
            env.tmp.path().join("ipam").display()
        );
        std::fs::write(config.join("net.d").join(file), conf).unwrap();
        UserNet {
            name,
            bridge,
            prefix,
            config,
        }
    }

    fn local_config(&self) -> String {
        format!("--local-config={}", self.config.display())
    }
}

impl Drop for UserNet {
    fn drop(&mut self) {
        // The bridge plugin leaves its bridge; it is this test's.
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .stderr(Stdio::null())
            .status();
    }
}

#[test]
fn user_bridge_network_with_a_fixed_ip_and_its_dns() {
    if !require_root("user_bridge_network_with_a_fixed_ip_and_its_dns") {
        return;
    }
    let env = TestEnv::new();
    let net = UserNet::new(
        &env,
        1,
        "10-test.conf",
        r#","dns":{"nameservers":["10.99.0.53"],"search":["pods.test"]}"#,
    );
    let img = shell_image(&env, "bridged");
    let fixed = format!("{}.50", net.prefix);
    let lc = net.local_config();
    let run = env.rkt(&[
        &lc,
        "--insecure-options=image",
        "run",
        &format!("--net={}:IP={fixed},default", net.name),
        &img,
        "--exec=/bin/sh",
        "--",
        "-c",
        "ip -o -4 addr show eth0; ip -o -4 addr show eth1; cat /etc/resolv.conf",
    ]);
    let out = run.ok();
    assert!(out.contains(&format!("inet {fixed}/24")), "{out}");
    assert!(out.contains("inet 172.16.28."), "{out}");
    assert!(
        out.contains(&format!(
            "# Generated by rkt from network {}\n\nsearch pods.test\nnameserver 10.99.0.53\n",
            net.name
        )),
        "{out}"
    );
    let uuid = env.rkt(&["list", "--no-legend", "--full"]).ok()[..36].to_string();
    let json: serde_json::Value =
        serde_json::from_str(env.rkt(&["status", "--format=json", &uuid]).ok()).unwrap();
    let nets = json["networks"].as_array().unwrap();
    // In conf file order: 10-test.conf before the built-in 99-default.conf.
    assert_eq!(nets[0]["netName"], net.name.as_str());
    assert_eq!(nets[0]["ifName"], "eth0");
    assert_eq!(nets[0]["ip"], fixed.as_str());
    assert_eq!(nets[0]["args"], format!("IP={fixed}").as_str());
    assert_eq!(nets[1]["netName"], "default");
    assert_eq!(nets[1]["ifName"], "eth1");
    env.rkt(&[&lc, "gc", "--grace-period=0s"]).ok();
    assert_eq!(owned_by(&uuid, &[]), Vec::<String>::new());
    let leases: Vec<_> = std::fs::read_dir(env.tmp.path().join("ipam").join(&net.name))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("10."))
        .collect();
    assert!(leases.is_empty(), "{leases:?}");
    // --dns=none keeps the network's DNS out.
    let none = env.rkt(&[
        &lc,
        "--insecure-options=image",
        "run",
        "--dns=none",
        &format!("--net={}", net.name),
        &img,
        "--exec=/bin/sh",
        "--",
        "-c",
        "cat /etc/resolv.conf 2>&1 || true",
    ]);
    assert!(!none.ok().contains("10.99.0.53"), "{none:?}");
    env.rkt(&[&lc, "gc", "--grace-period=0s"]).ok();
}

#[test]
fn port_forwarding_reaches_the_app_from_the_host_and_localhost() {
    if !require_root("port_forwarding_reaches_the_app_from_the_host_and_localhost") {
        return;
    }
    let env = TestEnv::new();
    let img = http_image(&env, "forwarded", "through-the-port\n");
    let host_port = free_port().to_string();
    let port_flag = format!("--port=http:{host_port}");
    let pod = start(&env, &[], &[&port_flag, &img]);
    let ip = running_networks(&env, &pod.uuid, &[])[0]["ip"]
        .as_str()
        .unwrap()
        .to_string();
    let veth = host_veth(&ip);
    assert_eq!(
        http_get(&format!("127.0.0.1:{host_port}")),
        "through-the-port\n"
    );
    assert_eq!(
        http_get(&format!("{}:{host_port}", host_address())),
        "through-the-port\n"
    );
    // A second pod cannot take the same host port: it fails whole, leaving nothing.
    let other = env.run(&[&port_flag, &img]);
    assert_eq!(other.code, 254, "{other:?}");
    assert!(
        other
            .stderr
            .contains(&format!("host port {host_port}/tcp is already forwarded")),
        "{other:?}"
    );
    let failed: Vec<String> = std::fs::read_dir(env.data_dir().join("pods/run"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|u| *u != pod.uuid)
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(owned_by(&failed[0], &[]), Vec::<String>::new());

    let uuid = pod.uuid.clone();
    assert!(!owned_by(&uuid, &[]).is_empty());
    pod.stop();
    env.rkt(&["gc", "--grace-period=0s"]).ok();
    assert_eq!(owned_by(&uuid, &[veth]), Vec::<String>::new());
}

#[test]
fn bad_networks_fail_with_the_network_and_the_cause() {
    if !require_root("bad_networks_fail_with_the_network_and_the_cause") {
        return;
    }
    let env = TestEnv::new();
    let img = shell_image(&env, "badnet");
    let config = env.tmp.path().join("config");
    let netd = config.join("net.d");
    std::fs::create_dir_all(&netd).unwrap();
    let lc = format!("--local-config={}", config.display());
    let run = |net: &str| {
        env.rkt(&[
            &lc,
            "--insecure-options=image",
            "run",
            &format!("--net={net}"),
            &img,
        ])
    };
    let check = |r: &rkt_tests::env::Run, want: &str| {
        assert_eq!(r.code, 254, "{r:?}");
        assert!(r.stderr.contains(want), "wanted {want:?}: {r:?}");
    };
    check(&run("no-such-net"), "networks not found: no-such-net");

    // The plugin search path is the operator's: without the standard directories, the
    // default network's ptp is nowhere.
    let empty = env.tmp.path().join("no-plugins");
    std::fs::create_dir_all(&empty).unwrap();
    let nowhere = env
        .cmd(&[&lc, "--insecure-options=image", "run", &img])
        .env("RKT_NET_PLUGIN_PATH", &empty)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&nowhere.stderr);
    assert_eq!(nowhere.status.code(), Some(254), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "error adding network \"default\": could not find plugin \"ptp\" in {}:{}",
            netd.display(),
            empty.display()
        )),
        "{stderr}"
    );

    std::fs::write(
        netd.join("20-missing.conf"),
        r#"{"cniVersion":"0.1.0","name":"missing","type":"rkt-test-no-such-plugin"}"#,
    )
    .unwrap();
    check(
        &run("missing"),
        "error adding network \"missing\": could not find plugin \"rkt-test-no-such-plugin\"",
    );

    // A plugin that fails ADD with a CNI error (and succeeds DEL, which teardown calls).
    let plugin = netd.join("rkt-test-failing");
    std::fs::write(
        &plugin,
        "#!/bin/sh\ncat >/dev/null\n[ \"$CNI_COMMAND\" = DEL ] && exit 0\necho '{\"cniVersion\":\"0.1.0\",\"code\":100,\"msg\":\"boom from the test plugin\",\"details\":\"on purpose\"}'\nexit 1\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&plugin, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        netd.join("zz-failing.conf"),
        r#"{"cniVersion":"0.1.0","name":"failing","type":"rkt-test-failing"}"#,
    )
    .unwrap();
    // In file order the default network (99-default.conf) comes first, so the failure also
    // takes down a network attached before it.
    check(
        &run("default,failing"),
        "error adding network \"failing\": boom from the test plugin; on purpose",
    );

    std::fs::write(netd.join("40-broken.conf"), "{ this is not json").unwrap();
    check(&run("default"), "40-broken.conf");
    std::fs::remove_file(netd.join("40-broken.conf")).unwrap();

    // Nothing of any failed pod is left on the host.
    let pods: Vec<String> = std::fs::read_dir(env.data_dir().join("pods/run"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(pods.len(), 5, "{pods:?}");
    for uuid in &pods {
        assert_eq!(owned_by(uuid, &[]), Vec::<String>::new(), "pod {uuid}");
    }
}

#[test]
fn an_address_in_use_is_refused() {
    if !require_root("an_address_in_use_is_refused") {
        return;
    }
    let env = TestEnv::new();
    let net = UserNet::new(&env, 2, "10-conflict.conf", "");
    let img = shell_image(&env, "conflict");
    let lc = net.local_config();
    let wanted = format!("--net={}:IP={}.60", net.name, net.prefix);
    let first = start(
        &env,
        &[&lc],
        &[&wanted, &img, "--exec=/bin/sleep", "--", "600"],
    );
    running_networks(&env, &first.uuid, &[&lc]);
    let second = env.rkt(&[&lc, "--insecure-options=image", "run", &wanted, &img]);
    assert_eq!(second.code, 254, "{second:?}");
    assert!(
        second
            .stderr
            .contains(&format!("error adding network \"{}\"", net.name))
            && second.stderr.contains(&format!("{}.60", net.prefix)),
        "{second:?}"
    );
    first.stop();
    env.rkt(&[&lc, "gc", "--grace-period=0s"]).ok();
}

#[test]
fn twenty_pods_in_parallel_get_distinct_addresses() {
    if !require_root("twenty_pods_in_parallel_get_distinct_addresses") {
        return;
    }
    let env = TestEnv::new();
    let img = shell_image(&env, "many");
    env.fetch(&img);
    let children: Vec<Child> = (0..20)
        .map(|_| {
            env.cmd(&[
                "--insecure-options=image",
                "run",
                &img,
                "--exec=/bin/sh",
                "--",
                "-c",
                "ip -o -4 addr show eth0",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    let mut addresses = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let addr = stdout
            .split_whitespace()
            .skip_while(|w| *w != "inet")
            .nth(1)
            .unwrap_or_else(|| panic!("no address: {stdout}"))
            .to_string();
        assert!(addr.starts_with("172.16.28."), "{addr}");
        addresses.push(addr);
    }
    addresses.sort();
    addresses.dedup();
    assert_eq!(addresses.len(), 20, "{addresses:?}");
    env.rkt(&["gc", "--grace-period=0s"]).ok();
}

#[test]
fn default_restricted_reaches_only_the_host() {
    if !require_root("default_restricted_reaches_only_the_host") {
        return;
    }
    let env = TestEnv::new();
    let img = shell_image(&env, "restricted");
    let pod = start(
        &env,
        &[],
        &[
            "--net=default-restricted",
            &img,
            "--exec=/bin/sleep",
            "--",
            "600",
        ],
    );
    let nets = running_networks(&env, &pod.uuid, &[]);
    assert_eq!(nets[0]["netName"], "default-restricted");
    let inside = env.rkt(&[
        "enter",
        &pod.uuid,
        "/bin/sh",
        "-c",
        "ip -o -4 addr show eth0; ip route",
    ]);
    let out = inside.ok().to_string();
    let held = owned_by(&pod.uuid, &[]);
    // Running with a lease, and no masquerading rule: the pod cannot go past the host.
    assert!(held.iter().any(|h| h.starts_with("lease")), "{held:?}");
    assert!(!held.iter().any(|h| h.starts_with("iptables")), "{held:?}");
    let uuid = pod.uuid.clone();
    pod.stop();
    assert!(out.contains("inet 172.31."), "{out}");
    assert!(!out.contains("default"), "a default route: {out}");
    env.rkt(&["gc", "--grace-period=0s"]).ok();
    assert_eq!(owned_by(&uuid, &[]), Vec::<String>::new());
}

#[test]
fn a_user_conf_replaces_a_builtin_and_all_loads_every_network() {
    if !require_root("a_user_conf_replaces_a_builtin_and_all_loads_every_network") {
        return;
    }
    let env = TestEnv::new();
    let n = unique(3);
    let config = env.tmp.path().join("config");
    std::fs::create_dir_all(config.join("net.d")).unwrap();
    // The operator's "default": ptp on a subnet of this test's own, leases in its directory.
    let subnet = format!("10.203.{n}");
    std::fs::write(
        config.join("net.d/50-mydefault.conf"),
        format!(
            r#"{{"cniVersion":"0.1.0","name":"default","type":"ptp","ipam":{{"type":"host-local","subnet":"{subnet}.0/24","dataDir":"{}"}}}}"#,
            env.tmp.path().join("ipam").display()
        ),
    )
    .unwrap();
    let lc = format!("--local-config={}", config.display());
    let img = shell_image(&env, "alltest");
    let run = env.rkt(&[
        &lc,
        "--insecure-options=image",
        "run",
        "--net=all",
        &img,
        "--exec=/bin/sh",
        "--",
        "-c",
        "ip -o -4 addr show eth0; ip -o -4 addr show eth1",
    ]);
    let out = run.ok();
    assert!(
        run.stderr
            .contains("overriding \"default\" network with one from"),
        "{run:?}"
    );
    // 50-mydefault.conf sorts before the built-in 99-default-restricted.conf.
    assert!(out.contains(&format!("eth0    inet {subnet}.")), "{out}");
    assert!(out.contains("eth1    inet 172.31."), "{out}");
    let uuid = env.rkt(&["list", "--no-legend", "--full"]).ok()[..36].to_string();
    let json: serde_json::Value =
        serde_json::from_str(env.rkt(&["status", "--format=json", &uuid]).ok()).unwrap();
    let names: Vec<&str> = json["networks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["netName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["default", "default-restricted"]);
    env.rkt(&[&lc, "gc", "--grace-period=0s"]).ok();
    assert_eq!(owned_by(&uuid, &[]), Vec::<String>::new());
}

/// rkt's metadata URL for a contained pod: the host's address on the pod's network.
#[test]
fn a_pod_on_the_default_network_reaches_the_metadata_service_at_its_gateway() {
    if !require_root("a_pod_on_the_default_network_reaches_the_metadata_service_at_its_gateway") {
        return;
    }
    let env = TestEnv::new();
    let mds = rkt_tests::mds::Mds::start(&env);
    let port = mds.port;
    let img = env.image(
        &ImageSpec::shell(
            "example.com/mds-reader",
            "echo url=$AC_METADATA_URL; echo uuid=$(wget -q -O - $AC_METADATA_URL/acMetadata/v1/pod/uuid)",
        ),
        "mds-reader.aci",
    );
    let out = mds.rkt(
        &env,
        &["--insecure-options=image", "run", "--mds-register", &img],
    );
    drop(mds);
    let stdout = out.ok();
    let uuid = env.rkt(&["list", "--no-legend", "--full"]).ok()[..36].to_string();
    assert!(
        stdout.contains(&format!("url=http://172.16.28.1:{port}/")),
        "{stdout}"
    );
    assert!(stdout.contains(&format!("uuid={uuid}")), "{stdout}");
}
