//! Unnamed regular files (`O_TMPFILE`) made ahead on a helper thread, for the extractor to name
//! (`linkat` with `AT_EMPTY_PATH`) instead of creating each file itself.
//!
//! Why: allocating the inode is most of what creating a small file costs, and `openat` with
//! `O_CREAT` does it holding the parent directory's lock, so the files of one directory are
//! created strictly one after the other. An unnamed file is made without any directory lock,
//! so the helper allocates inodes on another core while the extractor writes the previous
//! files. On ext4 without a journal, right after a large tree was deleted, an allocation scans
//! past every recently deleted inode and takes 0.3-0.6 ms, which is what `tar -x` and an
//! extraction of an image of 15,000 files spend most of their time on.
//!
//! Naming a file by its descriptor takes `CAP_DAC_READ_SEARCH`, so only root extracts this
//! way, and the extractor creates the file itself whenever none is ready (so it never waits
//! for the helper) or naming fails. The helper stops when the extractor drops its end of the
//! channel or when the kernel refuses an unnamed file (a filesystem without `O_TMPFILE`).
use std::os::fd::OwnedFd;
use std::sync::mpsc::{self, Receiver};
use std::thread::{self, JoinHandle};

use rustix::fs::{self as rfs, Mode, OFlags};

/// Unnamed files made ahead: enough to cover a burst of small files, few enough that the
/// ones left over at the end (freed when closed) cost nothing worth counting.
const AHEAD: usize = 16;

pub(crate) struct Spares {
    rx: Option<Receiver<OwnedFd>>,
    helper: Option<JoinHandle<()>>,
}

impl Spares {
    /// Starts making unnamed files in `root`'s filesystem; `None` if no thread can be started
    /// (the extractor then creates every file itself, as it would anyway).
    pub(crate) fn start(root: &OwnedFd) -> Option<Spares> {
        let dir = root.try_clone().ok()?;
        let (tx, rx) = mpsc::sync_channel(AHEAD);
        let helper = thread::Builder::new()
            .name("aci-inodes".into())
            .spawn(move || {
                let flags = OFlags::WRONLY | OFlags::TMPFILE | OFlags::CLOEXEC;
                // Owner-only, like a file the extractor creates, until its mode is applied.
                let mode = Mode::from_raw_mode(0o600);
                while let Ok(fd) = rfs::openat(&dir, ".", flags, mode) {
                    if tx.send(fd).is_err() {
                        return;
                    }
                }
            })
            .ok()?;
        Some(Spares {
            rx: Some(rx),
            helper: Some(helper),
        })
    }

    /// An unnamed file, if one is ready.
    pub(crate) fn take(&self) -> Option<OwnedFd> {
        self.rx.as_ref()?.try_recv().ok()
    }
}

impl Drop for Spares {
    fn drop(&mut self) {
        // Closing the channel first: a helper blocked on a full channel then returns, and the
        // files left in it are closed (and so freed) with it.
        self.rx = None;
        if let Some(helper) = self.helper.take() {
            // It only opens files and hands them over: it has nothing to report.
            helper.join().ok();
        }
    }
}
