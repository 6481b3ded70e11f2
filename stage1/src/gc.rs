//! The `gc` entrypoint: release what stage1 set up outside the pod's own namespaces. Everything
//! this stage1 mounts lives in the pod's private mount namespace, which the kernel removed when
//! the pod exited, so there is nothing to undo yet (network namespaces will be, see the
//! networking issue).
use anyhow::Result;

use crate::args::PodArgs;

pub fn gc(_args: &PodArgs) -> Result<i32> {
    Ok(0)
}
