//! How much space `rkt image list` says an image takes: the uncompressed ACI (rkt stores its
//! blobs uncompressed, so its blob size is the tar's) plus the tree store directories rendered
//! for it. A tree counts as rkt's `fileutil.DirSize` counts a directory: the `st_size` of every
//! entry, the directory itself, subdirectories and symlinks included, and a file with several
//! hard links once.
use std::collections::{HashMap, HashSet};
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;

use crate::{ImageInfo, ImageKey, Result, Store};

/// Adds up entries as rkt's `fileutil.DirSize` does.
#[derive(Debug, Default)]
pub(crate) struct DiskUsage {
    bytes: u64,
    /// Inodes of multiply linked files already counted.
    linked: HashSet<(u64, u64)>,
}

impl DiskUsage {
    pub(crate) fn add(&mut self, meta: &Metadata) {
        // Directories' link counts say nothing about hard links.
        if !meta.is_dir() && meta.nlink() > 1 && !self.linked.insert((meta.dev(), meta.ino())) {
            return;
        }
        self.bytes += meta.len();
    }

    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl Store {
    /// The tree store size of every image that has a rendered tree, keyed by the image the tree
    /// was rendered for (the last of its images; its dependencies are inside it but it is not
    /// theirs). Trees that vanish or cannot be read while listing are left out.
    pub fn tree_sizes(&self) -> Result<HashMap<ImageKey, u64>> {
        let mut sizes: HashMap<ImageKey, u64> = HashMap::new();
        for id in self.trees()? {
            let Ok(Some(tree)) = self.tree(&id) else {
                continue;
            };
            if let Some(top) = tree.images.last() {
                *sizes.entry(top.clone()).or_default() += tree.size;
            }
        }
        Ok(sizes)
    }
}

impl ImageInfo {
    /// What `rkt image list` shows as SIZE, given [`Store::tree_sizes`]: the uncompressed ACI
    /// plus its rendered trees.
    pub fn listed_size(&self, tree_sizes: &HashMap<ImageKey, u64>) -> u64 {
        let tree = tree_sizes.get(&self.image_key()).copied().unwrap_or(0);
        self.tar_size + tree
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_directories_symlinks_and_each_inode_once() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("d")).unwrap();
        std::fs::write(root.join("d/file"), vec![0u8; 1000]).unwrap();
        std::fs::hard_link(root.join("d/file"), root.join("link")).unwrap();
        std::os::unix::fs::symlink("d/file", root.join("sym")).unwrap();
        let mut usage = DiskUsage::default();
        let mut expected = 0;
        for path in ["", "d", "d/file", "link", "sym"] {
            let meta = std::fs::symlink_metadata(root.join(path)).unwrap();
            usage.add(&meta);
            if path != "link" {
                expected += meta.len();
            }
        }
        assert_eq!(usage.bytes(), expected);
        // The symlink counts its target's length, a directory its own st_size.
        assert!(expected >= 1000 + "d/file".len() as u64);
    }
}
