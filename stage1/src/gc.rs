//! The `gc` entrypoint: release what stage1 set up outside the pod's own namespaces. Everything
//! this stage1 mounts lives in the pod's private mount namespace, which the kernel removed when
//! the pod exited. The pod's cgroups and its network are removed by `run` when the pod ends,
//! and here when that stage1 was killed before it could: the network's plugin work (host-side
//! interfaces, routes, NAT rules, address leases), the forwarded ports and the named network
//! namespace (docs/stage-contract.md, "Networking").
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
    crate::confine::collect(&args.uuid)?;
    Ok(0)
}
