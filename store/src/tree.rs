//! Rendered trees: an image with its dependencies extracted once, then used read-only as the
//! lower directory of every pod's overlay.
use std::collections::HashSet;
use std::io::BufReader;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use aci::archive::{read_aci, ReadOptions};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha512};

use crate::key::to_hex;
use crate::usage::DiskUsage;
use crate::workdir::WorkDir;
use crate::{atomic, ImageKey, Result, Store, StoreError, StoreLock, TreeId};

const RENDERED_FILE: &str = "rendered.json";
/// Bounds dependency chains (appc has no limit; this only stops runaway manifests).
const MAX_DEPENDENCY_DEPTH: usize = 64;

/// A rendered tree in the store.
#[derive(Debug, Clone)]
pub struct TreeInfo {
    pub id: TreeId,
    /// Directory holding `rootfs/` and `manifest`.
    pub dir: PathBuf,
    /// Images rendered into it, dependencies first.
    pub images: Vec<ImageKey>,
    /// Its size as rkt's tree store counts it (see [`crate::usage`]): the whole tree
    /// directory, itself and its record included.
    pub size: u64,
}

impl TreeInfo {
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Rendered {
    images: Vec<String>,
    /// What the tree's contents (`rootfs/` and `manifest`) take, counted as in
    /// [`crate::usage`]; the tree directory and this record are added when read.
    size: u64,
    /// SHA-512 over every entry's path, type, mode, owner, size, mtime and link target.
    digest: String,
    /// The same over the top-level entries of the rootfs only.
    #[serde(default)]
    top_digest: String,
}

/// How much of a stored tree to check before using it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TreeCheck {
    /// Trust it (`--insecure-options=ondisk`).
    None,
    /// Its record and top-level entries: constant time whatever the image size, for `rkt run`.
    Quick,
    /// Every entry's metadata: a walk of the whole tree.
    Full,
}

impl Store {
    /// The images to render for `key`, dependencies depth first in listed order, `key` last.
    pub fn dependency_order(&self, key: &ImageKey) -> Result<Vec<ImageKey>> {
        let mut order = Vec::new();
        let mut path = Vec::new();
        self.visit_dependencies(key, &mut path, &mut order)?;
        Ok(order)
    }

    fn visit_dependencies(
        &self,
        key: &ImageKey,
        path: &mut Vec<ImageKey>,
        order: &mut Vec<ImageKey>,
    ) -> Result<()> {
        if path.contains(key) || path.len() > MAX_DEPENDENCY_DEPTH {
            return Err(StoreError::DependencyCycle(key.to_string()));
        }
        let manifest = self.manifest(key)?;
        path.push(key.clone());
        for dep in &manifest.dependencies {
            let missing = || StoreError::MissingDependency {
                image: manifest.name.clone(),
                dependency: dep.image_name.clone(),
            };
            let dep_key = match &dep.image_id {
                Some(id) => match self.resolve_id(id) {
                    Ok(k) => k,
                    Err(StoreError::ImageNotFound(_)) => return Err(missing()),
                    Err(e) => return Err(e),
                },
                None => self
                    .find_by_name(&dep.image_name, &dep.labels)?
                    .ok_or_else(missing)?
                    .image_key(),
            };
            self.visit_dependencies(&dep_key, path, order)?;
        }
        path.pop();
        if !order.contains(key) {
            order.push(key.clone());
        }
        Ok(())
    }

    /// Renders `key` with its dependencies, or reuses the existing tree after checking it
    /// against the digests taken when it was rendered (rendering it again if it changed).
    pub fn render_tree(&self, key: &ImageKey, check: TreeCheck) -> Result<TreeInfo> {
        self.render_tree_once(key, check)
            .map_err(|e| e.in_store(self.dir()))
    }

    fn render_tree_once(&self, key: &ImageKey, check: TreeCheck) -> Result<TreeInfo> {
        let order = self.dependency_order(key)?;
        let id = TreeId::for_images(&order);
        let _render_lock = self.tree_lock(&id)?;
        if let Some(tree) = self.tree(&id)? {
            match self.check_tree(&id, check) {
                Ok(()) => return Ok(tree),
                Err(StoreError::CorruptTree(_)) => self.remove_tree(&id)?,
                Err(e) => return Err(e),
            }
        }
        let work = WorkDir::create(self, "render")?;
        let staged = work.path().join("tree");
        self.render_into(&staged, &order, key)?;
        self.install_tree_locked(&staged, &id, &order)
    }

    /// Extracts `order` (dependencies first, `key` last) into a new directory `staged`,
    /// checking every blob against its key on the way, within the store's limits (the
    /// rendered size counts every layer).
    fn render_into(&self, staged: &Path, order: &[ImageKey], key: &ImageKey) -> Result<()> {
        std::fs::create_dir(staged).map_err(|e| StoreError::io("create directory", staged, e))?;
        let mut rendered = 0u64;
        for image in order {
            // The blob as stored (compressed), so that read_aci sees the expansion ratio.
            let blob = BufReader::with_capacity(256 * 1024, self.open_blob_raw(image)?);
            let opts = ReadOptions {
                extract_to: Some(staged),
                overwrite: true,
                limits: self.limits,
                rendered_before: rendered,
                ..ReadOptions::default()
            };
            let summary =
                read_aci(blob, &opts).map_err(|e| StoreError::from(e).writing_in(staged))?;
            rendered += summary.rendered_size;
            if ImageKey::from_image_id(&summary.id) != *image {
                return Err(StoreError::CorruptImage {
                    key: image.clone(),
                    actual: summary.id.full().to_string(),
                });
            }
        }
        let top = self.manifest(key)?;
        // The top image's manifest describes the tree, whatever a dependency wrote there.
        let manifest_path = staged.join("manifest");
        std::fs::write(&manifest_path, self.manifest_bytes(key)?)
            .map_err(|e| StoreError::io("write", &manifest_path, e))?;
        aci::archive::apply_path_whitelist(&staged.join("rootfs"), &top.path_whitelist)?;
        Ok(())
    }

    /// Checks the stored tree of `key` in place: every entry's metadata against the digest
    /// taken when it was rendered, and every regular file's content against the image blobs
    /// it was rendered from (streamed, their hashes checked on the way). Nothing is written
    /// unless the tree differs: then it is rendered again. Returns whether the stored tree
    /// was intact (`true` as well when nothing was rendered yet). A full disk can only
    /// matter for that repair, and is reported as a full disk.
    pub fn verify_tree_contents(&self, key: &ImageKey) -> Result<bool> {
        let order = self.dependency_order(key)?;
        let id = TreeId::for_images(&order);
        let _render_lock = self.tree_lock(&id)?;
        let Some(existing) = self.tree(&id)? else {
            return Ok(true);
        };
        let intact = match self.check_tree(&id, TreeCheck::Full) {
            Ok(()) => self.same_contents(&existing.rootfs(), &order)?,
            Err(StoreError::CorruptTree(_)) => false,
            Err(e) => return Err(e),
        };
        if intact {
            return Ok(true);
        }
        let repaired = (|| {
            let work = WorkDir::create(self, "render")?;
            let staged = work.path().join("tree");
            self.render_into(&staged, &order, key)?;
            self.install_tree_locked(&staged, &id, &order)
        })();
        repaired.map_err(|e| e.in_store(self.dir()))?;
        Ok(false)
    }

    /// Whether every regular file under `rootfs` holds what the image that rendered it last
    /// (the last of `order` that has it) says.
    fn same_contents(&self, rootfs: &Path, order: &[ImageKey]) -> Result<bool> {
        let mut compare = CompareFiles {
            rootfs,
            seen: HashSet::new(),
            current: None,
            same: true,
        };
        // The top image first: a file a later layer wrote is not its dependency's.
        for image in order.iter().rev() {
            let mut blob = self.open_blob(image)?;
            let streamed = aci::archive::copy_rootfs_files(&mut blob, &mut compare);
            // The hash decides first: a tampered blob may also fail to parse.
            blob.finish()?;
            streamed?;
            if !compare.same {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Moves a freshly extracted tree into place (unless an identical one appeared meanwhile).
    pub(crate) fn install_tree(
        &self,
        staged: &Path,
        id: &TreeId,
        images: &[ImageKey],
    ) -> Result<TreeInfo> {
        let _render_lock = self.tree_lock(id)?;
        if let Some(tree) = self.tree(id)? {
            return Ok(tree);
        }
        self.install_tree_locked(staged, id, images)
    }

    fn install_tree_locked(
        &self,
        staged: &Path,
        id: &TreeId,
        images: &[ImageKey],
    ) -> Result<TreeInfo> {
        let mut digests = tree_digest(&staged.join("rootfs"), true)?;
        // The digest walk counted what is below rootfs/; add rootfs/ itself and the manifest.
        for entry in read_names(staged)? {
            let path = staged.join(entry);
            let meta =
                std::fs::symlink_metadata(&path).map_err(|e| StoreError::io("stat", &path, e))?;
            digests.usage.add(&meta);
        }
        let rendered = Rendered {
            images: images.iter().map(|k| k.to_string()).collect(),
            size: digests.usage.bytes(),
            digest: digests.full,
            top_digest: digests.top,
        };
        let json = serde_json::to_vec_pretty(&rendered).expect("bug: Rendered always serialises");
        let record = staged.join(RENDERED_FILE);
        std::fs::write(&record, &json).map_err(|e| StoreError::io("write", &record, e))?;
        let dest = self.tree_dir(id);
        atomic::remove_tree(&dest)?;
        std::fs::rename(staged, &dest).map_err(|e| StoreError::io("store tree", &dest, e))?;
        atomic::sync_dir(&self.trees_dir())?;
        Ok(TreeInfo {
            id: id.clone(),
            size: tree_size(&dest, &rendered, json.len())?,
            dir: dest,
            images: images.to_vec(),
        })
    }

    fn tree_lock(&self, id: &TreeId) -> Result<StoreLock> {
        StoreLock::acquire_removable(&self.entry_lock_path(id.as_str()))
    }

    /// The tree's record and the record's size in bytes.
    fn rendered(&self, id: &TreeId) -> Result<Option<(Rendered, usize)>> {
        let path = self.tree_dir(id).join(RENDERED_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(serde_json::from_slice(&bytes)
                .ok()
                .map(|r| (r, bytes.len()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::io("read", &path, e)),
        }
    }

    /// A rendered tree, if present and complete.
    pub fn tree(&self, id: &TreeId) -> Result<Option<TreeInfo>> {
        let Some((rendered, record_len)) = self.rendered(id)? else {
            return Ok(None);
        };
        let images = rendered
            .images
            .iter()
            .map(|k| ImageKey::parse(k))
            .collect::<Result<Vec<_>>>()?;
        let dir = self.tree_dir(id);
        Ok(Some(TreeInfo {
            id: id.clone(),
            size: tree_size(&dir, &rendered, record_len)?,
            dir,
            images,
        }))
    }

    /// Compares a tree with the digests taken when it was rendered (metadata only, never
    /// file contents).
    pub fn check_tree(&self, id: &TreeId, check: TreeCheck) -> Result<()> {
        if check == TreeCheck::None {
            return Ok(());
        }
        let (rendered, _) = self
            .rendered(id)?
            .ok_or_else(|| StoreError::CorruptTree(id.to_string()))?;
        let rootfs = self.tree_dir(id).join("rootfs");
        let ok = match check {
            TreeCheck::Full => tree_digest(&rootfs, true)?.full == rendered.digest,
            _ => tree_digest(&rootfs, false)?.top == rendered.top_digest,
        };
        if !ok {
            return Err(StoreError::CorruptTree(id.to_string()));
        }
        Ok(())
    }

    /// Every tree directory in the store, complete or not.
    pub fn trees(&self) -> Result<Vec<TreeId>> {
        let dir = self.trees_dir();
        let entries =
            std::fs::read_dir(&dir).map_err(|e| StoreError::io("read directory", &dir, e))?;
        Ok(entries
            .flatten()
            .filter_map(|e| e.file_name().to_str().and_then(TreeId::parse))
            .collect())
    }

    /// Removes a tree: it disappears with one rename, then is deleted.
    pub fn remove_tree(&self, id: &TreeId) -> Result<()> {
        let dir = self.tree_dir(id);
        if !dir.exists() {
            return Ok(());
        }
        let work = WorkDir::create(self, "remove")?;
        let trash = work.path().join("tree");
        std::fs::rename(&dir, &trash).map_err(|e| StoreError::io("remove", &dir, e))?;
        // Its render lock goes with it, unless a render holds it right now.
        StoreLock::remove_unused(&self.entry_lock_path(id.as_str()))?;
        Ok(())
    }

    /// Removes every tree not in `keep`, and trees whose images are gone. The caller holds the
    /// exclusive store lock and lists the trees pods still use.
    pub fn gc_trees(&self, keep: &HashSet<TreeId>) -> Result<Vec<TreeId>> {
        let mut removed = Vec::new();
        for id in self.trees()? {
            if keep.contains(&id) {
                continue;
            }
            self.remove_tree(&id)?;
            removed.push(id);
        }
        Ok(removed)
    }
}

/// Compares the files streamed from image blobs with the files of a rendered tree.
struct CompareFiles<'a> {
    rootfs: &'a Path,
    /// Paths already compared (from a later layer, which wins).
    seen: HashSet<String>,
    /// The tree's file being compared, while its content streams in.
    current: Option<std::fs::File>,
    same: bool,
}

impl std::io::Write for CompareFiles<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        use std::io::Read;
        if let Some(file) = &mut self.current {
            let mut ours = vec![0u8; buf.len()];
            if file.read_exact(&mut ours).is_err() || ours != buf {
                self.same = false;
                self.current = None;
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl aci::archive::RootfsSink for CompareFiles<'_> {
    fn begin(&mut self, path: &str, size: u64) -> bool {
        if !self.same || !self.seen.insert(path.to_string()) {
            return false;
        }
        // Opened inside the tree, which an image shaped: never through a symlink out of it.
        // A file that is missing or not regular was removed by the path whitelist or
        // replaced by a later layer; the metadata digest already vouches for the tree's shape.
        let Ok(file) = aci::rootfs::open_in_root(self.rootfs, path) else {
            return false;
        };
        match file.metadata() {
            Ok(m) if m.len() == size => {
                self.current = Some(file);
                true
            }
            _ => {
                self.same = false;
                false
            }
        }
    }

    fn end(&mut self) -> std::io::Result<()> {
        self.current = None;
        Ok(())
    }
}

/// The size of a stored tree: its contents as recorded, plus the directory itself and the
/// record (`record_len` bytes), which only exist once the contents were counted.
fn tree_size(dir: &Path, rendered: &Rendered, record_len: usize) -> Result<u64> {
    let meta = std::fs::symlink_metadata(dir).map_err(|e| StoreError::io("stat", dir, e))?;
    Ok(rendered.size + meta.len() + record_len as u64)
}

fn read_names(dir: &Path) -> Result<Vec<std::ffi::OsString>> {
    std::fs::read_dir(dir)
        .map_err(|e| StoreError::io("read directory", dir, e))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<std::io::Result<_>>()
        .map_err(|e| StoreError::io("read directory", dir, e))
}

/// Metadata digests of a tree and the space its entries take.
struct Digests {
    full: String,
    top: String,
    usage: DiskUsage,
}

/// Walks the whole tree (`deep`) or only its top level.
fn tree_digest(root: &Path, deep: bool) -> Result<Digests> {
    let mut full = Sha512::new();
    let mut top = Sha512::new();
    let mut usage = DiskUsage::default();
    walk(root, Path::new(""), &mut full, &mut top, &mut usage, deep)?;
    Ok(Digests {
        full: format!("sha512-{}", to_hex(&full.finalize())),
        top: format!("sha512-{}", to_hex(&top.finalize())),
        usage,
    })
}

fn walk(
    root: &Path,
    rel: &Path,
    full: &mut Sha512,
    top: &mut Sha512,
    usage: &mut DiskUsage,
    deep: bool,
) -> Result<()> {
    let dir = root.join(rel);
    let mut entries = read_names(&dir)?;
    entries.sort();
    let at_top = rel.as_os_str().is_empty();
    for name in entries {
        let rel_path = rel.join(&name);
        let path = root.join(&rel_path);
        let meta =
            std::fs::symlink_metadata(&path).map_err(|e| StoreError::io("stat", &path, e))?;
        let ft = meta.file_type();
        usage.add(&meta);
        let mut line = rel_path.as_os_str().as_encoded_bytes().to_vec();
        line.extend_from_slice(
            format!(
                "\0{:o}\0{}\0{}\0{}\0{}.{}\0{}\0",
                meta.mode(),
                meta.uid(),
                meta.gid(),
                if ft.is_file() { meta.len() } else { 0 },
                meta.mtime(),
                meta.mtime_nsec(),
                meta.rdev(),
            )
            .as_bytes(),
        );
        if ft.is_symlink() {
            let target =
                std::fs::read_link(&path).map_err(|e| StoreError::io("read link", &path, e))?;
            line.extend_from_slice(target.as_os_str().as_encoded_bytes());
        }
        line.push(b'\n');
        full.update(&line);
        if at_top {
            top.update(&line);
        }
        if ft.is_dir() && deep {
            walk(root, &rel_path, full, top, usage, deep)?;
        }
    }
    Ok(())
}
