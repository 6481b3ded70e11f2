//! Whether pods can use overlay mounts for their root filesystems (docs/cli.md).
use std::path::{Path, PathBuf};

use crate::output::Log;

/// Whether overlay mounts can be used for pods under the data directory (rkt probes the data directory the same way).
pub fn overlay_supported(data_dir: &Path, log: &Log) -> bool {
    match overlay_problem(data_dir) {
        None => true,
        Some(reason) => {
            log.print(format!("disabling overlay support: {reason:?}"));
            false
        }
    }
}

fn overlay_problem(data_dir: &Path) -> Option<String> {
    let has_overlay = || {
        std::fs::read_to_string("/proc/filesystems")
            .map(|s| {
                s.lines()
                    .any(|l| l.split_whitespace().last() == Some("overlay"))
            })
            .unwrap_or(false)
    };
    if !has_overlay() {
        // Best effort: the module may simply not be loaded yet.
        let _ = std::process::Command::new("modprobe")
            .arg("overlay")
            .status();
        if !has_overlay() {
            return Some("overlay entry not present in /proc/filesystems".into());
        }
    }
    let probe: PathBuf = if data_dir.exists() {
        data_dir.to_path_buf()
    } else {
        PathBuf::from("/")
    };
    match nix::sys::statfs::statfs(&probe) {
        Ok(fs) => {
            let magic = fs.filesystem_type().0;
            const AUFS: i64 = 0x6175_6673;
            const ZFS: i64 = 0x2fc1_2fc1;
            const OVERLAYFS: i64 = 0x794c_7630;
            match magic {
                AUFS => Some("unsupported filesystem: aufs".into()),
                ZFS => Some("unsupported filesystem: zfs".into()),
                OVERLAYFS => {
                    Some("unsupported filesystem: overlay cannot be nested on overlay".into())
                }
                _ => None,
            }
        }
        Err(e) => Some(format!("cannot statfs {}: {e}", probe.display())),
    }
}
