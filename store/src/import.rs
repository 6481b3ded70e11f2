//! Importing an ACI: one pass over the fetched bytes, which are copied into the blob while they
//! are decompressed, hashed, validated and (for images without dependencies) extracted into what
//! becomes the image's rendered tree.
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};

use aci::archive::{read_aci, ReadOptions};

use crate::blob::BLOB_FILE;
use crate::index::{now_nanos, write_manifest, write_record};
use crate::workdir::{clean_stale, WorkDir};
use crate::{atomic, ImageInfo, ImageKey, Result, Store, StoreError, StoreLock, TreeId};

const BUF_SIZE: usize = 256 * 1024;

/// How an image is being imported.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Where it came from, remembered for pull policies keyed on URLs.
    pub url: Option<String>,
    /// Fetched without asking for a version (discovery "latest").
    pub latest: bool,
    /// Also render its tree now, so that `rkt run` only has to mount it.
    pub render: bool,
    /// See [`ImageInfo::source_stamp`].
    pub source_stamp: Option<String>,
}

/// Copies everything read through it into the blob file.
struct Tee<'a> {
    input: &'a mut dyn Read,
    copy: BufWriter<File>,
    /// Why writing the copy failed: the archive reader only sees a failed read, and must not
    /// blame the image for it.
    write_error: Option<io::Error>,
}

impl Read for Tee<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.input.read(buf)?;
        if let Err(e) = self.copy.write_all(&buf[..n]) {
            let seen = io::Error::new(e.kind(), e.to_string());
            self.write_error = Some(e);
            return Err(seen);
        }
        Ok(n)
    }
}

impl Store {
    /// Imports an ACI (compressed or not). Nothing becomes visible unless the whole archive was
    /// read, hashed and validated; importing an image that is already present keeps the stored
    /// copy and refreshes its origin.
    pub fn import(&self, input: &mut dyn Read, opts: &ImportOptions) -> Result<ImageInfo> {
        self.import_locked(input, opts)
            .map_err(|e| e.in_store(self.dir()))
    }

    fn import_locked(&self, input: &mut dyn Read, opts: &ImportOptions) -> Result<ImageInfo> {
        let _lock = self.lock_shared()?;
        clean_stale(self)?;
        let work = WorkDir::create(self, "import")?;
        let staged = work.path().join("image");
        std::fs::create_dir(&staged).map_err(|e| StoreError::io("create directory", &staged, e))?;
        let blob_path = staged.join(BLOB_FILE);
        let blob = File::create(&blob_path).map_err(|e| StoreError::io("create", &blob_path, e))?;
        let tree_tmp = work.path().join("tree");
        if opts.render {
            std::fs::create_dir(&tree_tmp)
                .map_err(|e| StoreError::io("create directory", &tree_tmp, e))?;
        }

        let mut tee = Tee {
            input,
            copy: BufWriter::with_capacity(BUF_SIZE, blob),
            write_error: None,
        };
        // Past a limit, read_aci stops and the work directory (blob and tree so far) goes.
        let read_opts = ReadOptions {
            extract_to: opts.render.then_some(tree_tmp.as_path()),
            limits: self.limits,
            ..ReadOptions::default()
        };
        let read = read_aci(&mut tee, &read_opts).and_then(|summary| {
            // Trailing bytes after the compressed stream still belong to the fetched file
            // (bounded: an endless input must not fill the disk).
            aci::archive::drain_trailing(&mut tee).map(|_| summary)
        });
        if let Some(e) = tee.write_error.take() {
            return Err(StoreError::io("write", &blob_path, e));
        }
        let summary = read.map_err(|e| StoreError::from(e).writing_in(work.path()))?;
        let blob = tee
            .copy
            .into_inner()
            .map_err(|e| StoreError::io("write", &blob_path, e.into_error()))?;
        blob.sync_all()
            .map_err(|e| StoreError::io("sync", &blob_path, e))?;
        let size = blob
            .metadata()
            .map_err(|e| StoreError::io("stat", &blob_path, e))?
            .len();

        let key = ImageKey::from_image_id(&summary.id);
        write_manifest(&staged, &summary.manifest_bytes)?;
        let now = now_nanos();
        let info = ImageInfo {
            key: key.to_string(),
            id: summary.id.full().to_string(),
            name: summary.manifest.name.clone(),
            labels: summary.manifest.labels.clone(),
            import_time: now,
            last_used: now,
            size,
            tar_size: summary.tar_size,
            compression: summary.compression.name().to_string(),
            url: opts.url.clone(),
            latest: opts.latest,
            source_stamp: opts.source_stamp.clone(),
        };

        // An image without dependencies renders to exactly what was just extracted.
        if opts.render && summary.manifest.dependencies.is_empty() {
            aci::archive::apply_path_whitelist(
                &tree_tmp.join("rootfs"),
                &summary.manifest.path_whitelist,
            )?;
            let images = std::slice::from_ref(&key);
            self.install_tree(&tree_tmp, &TreeId::for_images(images), images)?;
        }

        let dest = self.image_dir(&key);
        // Concurrent imports of the same image commit one after the other.
        let _commit = StoreLock::acquire_removable(&self.entry_lock_path(key.as_str()))?;
        if let Some(mut existing) = self.image_info(&key)? {
            // Same content already stored: keep the blob, but the record says it was just
            // imported (rkt rewrites its import and last-used times on every fetch) and
            // remembers the newest origin.
            existing.import_time = info.import_time;
            existing.last_used = info.last_used;
            if opts.url.is_some() {
                existing.url = opts.url.clone();
                existing.source_stamp = opts.source_stamp.clone();
            }
            existing.latest |= opts.latest;
            write_record(&dest, &existing)?;
            return Ok(existing);
        }
        write_record(&staged, &info)?;
        // A directory without a record is an import that died before this rename.
        atomic::remove_tree(&dest)?;
        std::fs::rename(&staged, &dest).map_err(|e| StoreError::io("store image", &dest, e))?;
        atomic::sync_dir(&self.images_dir())?;
        Ok(info)
    }
}
