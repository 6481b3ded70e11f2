//! The `gc` entrypoint: release what stage1 set up outside the pod's own namespaces. The
//! mounts live in the pod's private mount namespace, which the kernel removed when the pod
//! exited; the network does not: its plugins' work (host-side interfaces, routes, NAT rules,
//! address leases), the forwarded ports and the named network namespace are undone here
//! (docs/stage-contract.md, "Networking").
use anyhow::{Context, Result};

use crate::args::PodArgs;
use crate::net;

pub fn gc(args: &PodArgs) -> Result<i32> {
    let pod_dir = std::env::current_dir().context("cannot get the pod directory")?;
    let s1root = pod_dir.join(crate::contract::STAGE1_ROOTFS);
    let local_config = args.local_config.as_deref().unwrap_or("/etc/rkt");
    net::teardown(&net::NetContext {
        pod_dir: &pod_dir,
        s1root: &s1root,
        uuid: &args.uuid,
        local_config: std::path::Path::new(local_config),
        debug: args.debug,
    });
    Ok(0)
}
