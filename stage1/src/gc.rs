//! The `gc` entrypoint: release what stage1 set up outside the pod's own namespaces. Everything
//! this stage1 mounts lives in the pod's private mount namespace, which the kernel removed when
//! the pod exited; the pod's cgroups are removed by `run` when the pod ends, and here when that
//! stage1 was killed before it could.
use anyhow::Result;

use crate::args::PodArgs;

pub fn gc(args: &PodArgs) -> Result<i32> {
    crate::confine::collect(&args.uuid)?;
    Ok(0)
}
