//! Writing ACIs: `manifest` first, then `rootfs` and its entries, with deterministic headers.
use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use tar::{EntryType, Header};

use super::{Compression, BUF_SIZE};
use crate::schema::ImageManifest;

mod tree_at;

pub use tree_at::MAX_TREE_DEPTH;

enum Encoder<W: Write> {
    None(BufWriter<W>),
    Gzip(flate2::write::GzEncoder<BufWriter<W>>),
    Bzip2(bzip2::write::BzEncoder<BufWriter<W>>),
    Xz(xz2::write::XzEncoder<BufWriter<W>>),
    Zstd(zstd::stream::write::Encoder<'static, BufWriter<W>>),
}

impl<W: Write> Encoder<W> {
    fn new(out: W, compression: Compression) -> io::Result<Encoder<W>> {
        let out = BufWriter::with_capacity(BUF_SIZE, out);
        Ok(match compression {
            Compression::None => Encoder::None(out),
            Compression::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(
                out,
                flate2::Compression::default(),
            )),
            Compression::Bzip2 => Encoder::Bzip2(bzip2::write::BzEncoder::new(
                out,
                bzip2::Compression::default(),
            )),
            Compression::Xz => Encoder::Xz(xz2::write::XzEncoder::new(out, 6)),
            Compression::Zstd => Encoder::Zstd(zstd::stream::write::Encoder::new(out, 0)?),
        })
    }

    fn inner(&mut self) -> &mut dyn Write {
        match self {
            Encoder::None(w) => w,
            Encoder::Gzip(w) => w,
            Encoder::Bzip2(w) => w,
            Encoder::Xz(w) => w,
            Encoder::Zstd(w) => w,
        }
    }

    fn finish(self) -> io::Result<W> {
        let buffered = match self {
            Encoder::None(w) => w,
            Encoder::Gzip(w) => w.finish()?,
            Encoder::Bzip2(w) => w.finish()?,
            Encoder::Xz(w) => w.finish()?,
            Encoder::Zstd(w) => w.finish()?,
        };
        buffered.into_inner().map_err(|e| e.into_error())
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner().write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner().flush()
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// `bin/sh` or `/bin/sh` → `bin/sh`; `..` is refused.
fn rootfs_relative(path: &str) -> io::Result<String> {
    let mut parts = Vec::new();
    for comp in path.split('/') {
        match comp {
            "" | "." => {}
            ".." => return Err(invalid(format!("path {path:?} has a \"..\" component"))),
            c => parts.push(c),
        }
    }
    Ok(parts.join("/"))
}

/// Writes a valid ACI. Entries appear in the order they are added, after `manifest` and
/// `rootfs`; missing parent directories are added first with mode 0755. Owners are 0:0 and
/// times are 0 unless [`AciBuilder::preserve_ownership`] / [`AciBuilder::preserve_mtime`] are
/// enabled for [`AciBuilder::add_tree`], so the same input gives the same bytes.
pub struct AciBuilder<W: Write> {
    tar: tar::Builder<Encoder<W>>,
    /// Paths (relative to rootfs) already written, and those that were implicit parents.
    added: HashSet<String>,
    implicit: HashSet<String>,
    preserve_ownership: bool,
    preserve_mtime: bool,
}

struct Attrs {
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
}

const ROOT_DIR: Attrs = Attrs {
    mode: 0o755,
    uid: 0,
    gid: 0,
    mtime: 0,
};

impl<W: Write> AciBuilder<W> {
    /// Starts an image with `manifest` (validated, written compactly) and the `rootfs` directory.
    pub fn new(out: W, compression: Compression, manifest: &ImageManifest) -> io::Result<Self> {
        manifest
            .validate()
            .map_err(|e| invalid(format!("invalid image manifest: {e}")))?;
        Self::start(out, compression, &manifest.to_json())
    }

    /// Like [`AciBuilder::new`], storing the manifest bytes as given (after validating them).
    pub fn with_manifest_bytes(
        out: W,
        compression: Compression,
        manifest: &[u8],
    ) -> io::Result<Self> {
        ImageManifest::from_slice(manifest).map_err(|e| {
            let detail = match &e {
                crate::ManifestError::Json(j) => format!("{e}: {j}"),
                crate::ManifestError::Invalid(v) => v.to_string(),
            };
            invalid(format!("invalid image manifest: {detail}"))
        })?;
        Self::start(out, compression, manifest)
    }

    fn start(out: W, compression: Compression, manifest: &[u8]) -> io::Result<Self> {
        let mut b = AciBuilder {
            tar: tar::Builder::new(Encoder::new(out, compression)?),
            added: HashSet::new(),
            implicit: HashSet::new(),
            preserve_ownership: false,
            preserve_mtime: false,
        };
        let attrs = Attrs {
            mode: 0o644,
            ..ROOT_DIR
        };
        b.append(
            EntryType::Regular,
            "manifest",
            &attrs,
            manifest.len() as u64,
            manifest,
        )?;
        b.append(EntryType::Directory, "rootfs", &ROOT_DIR, 0, io::empty())?;
        Ok(b)
    }

    /// Keep host owners in [`AciBuilder::add_tree`] (default: 0:0).
    pub fn preserve_ownership(&mut self, yes: bool) -> &mut Self {
        self.preserve_ownership = yes;
        self
    }

    /// Keep host modification times in [`AciBuilder::add_tree`] (default: 0).
    pub fn preserve_mtime(&mut self, yes: bool) -> &mut Self {
        self.preserve_mtime = yes;
        self
    }

    fn header(kind: EntryType, attrs: &Attrs, size: u64) -> Header {
        let mut h = Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(attrs.mode & 0o7777);
        h.set_uid(attrs.uid);
        h.set_gid(attrs.gid);
        h.set_mtime(attrs.mtime);
        h.set_size(size);
        h
    }

    fn append(
        &mut self,
        kind: EntryType,
        name: &str,
        attrs: &Attrs,
        size: u64,
        data: impl Read,
    ) -> io::Result<()> {
        let mut h = Self::header(kind, attrs, size);
        let mut counted = Counted {
            inner: data.take(size),
            n: 0,
        };
        self.tar.append_data(&mut h, name, &mut counted)?;
        if counted.n != size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "{name}: expected {size} bytes of content, got {}",
                    counted.n
                ),
            ));
        }
        Ok(())
    }

    /// Registers `rel` as new, adding its missing parents; errors on duplicates.
    fn claim(&mut self, rel: &str) -> io::Result<String> {
        if rel.is_empty() {
            return Err(invalid("the rootfs itself cannot be added again".into()));
        }
        if self.added.contains(rel) {
            return Err(invalid(format!("duplicate path {rel:?} in image")));
        }
        let mut prefix = String::new();
        let parents: Vec<&str> = rel.split('/').collect();
        for part in &parents[..parents.len() - 1] {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(part);
            if self.added.insert(prefix.clone()) {
                self.implicit.insert(prefix.clone());
                self.append(
                    EntryType::Directory,
                    &format!("rootfs/{prefix}"),
                    &ROOT_DIR,
                    0,
                    io::empty(),
                )?;
            }
        }
        self.added.insert(rel.to_string());
        Ok(format!("rootfs/{rel}"))
    }

    fn dir_with(&mut self, path: &str, attrs: &Attrs) -> io::Result<()> {
        let rel = rootfs_relative(path)?;
        if self.implicit.contains(&rel) {
            if attrs.mode & 0o7777 == 0o755 && attrs.uid == 0 && attrs.gid == 0 {
                return Ok(());
            }
            return Err(invalid(format!(
                "directory {rel:?} was already added (as a parent, mode 0755); add directories before their contents"
            )));
        }
        let name = self.claim(&rel)?;
        self.append(EntryType::Directory, &name, attrs, 0, io::empty())
    }

    /// Adds a directory owned by 0:0.
    pub fn add_dir(&mut self, path: &str, mode: u32) -> io::Result<()> {
        self.dir_with(path, &Attrs { mode, ..ROOT_DIR })
    }

    /// Adds a regular file owned by 0:0 with the given content.
    pub fn add_file(&mut self, path: &str, mode: u32, data: &[u8]) -> io::Result<()> {
        let name = self.claim(&rootfs_relative(path)?)?;
        self.append(
            EntryType::Regular,
            &name,
            &Attrs { mode, ..ROOT_DIR },
            data.len() as u64,
            data,
        )
    }

    /// Adds a symlink; the target is stored as given.
    pub fn add_symlink(&mut self, path: &str, target: &str) -> io::Result<()> {
        self.symlink_with(
            path,
            target,
            &Attrs {
                mode: 0o777,
                ..ROOT_DIR
            },
        )
    }

    fn symlink_with(&mut self, path: &str, target: &str, attrs: &Attrs) -> io::Result<()> {
        let name = self.claim(&rootfs_relative(path)?)?;
        let mut h = Self::header(EntryType::Symlink, attrs, 0);
        self.tar.append_link(&mut h, name, target)
    }

    fn attrs_of(&self, meta: &fs::Metadata) -> Attrs {
        Attrs {
            mode: meta.mode() & 0o7777,
            uid: if self.preserve_ownership {
                u64::from(meta.uid())
            } else {
                0
            },
            gid: if self.preserve_ownership {
                u64::from(meta.gid())
            } else {
                0
            },
            mtime: if self.preserve_mtime {
                meta.mtime().max(0) as u64
            } else {
                0
            },
        }
    }

    /// Copies the host directory `host_dir` to `path_in_rootfs` (`""` or `/` for the rootfs
    /// itself), recursively and in sorted order: modes, symlinks, fifos and device nodes are
    /// kept; sockets are skipped. File contents are streamed.
    pub fn add_tree(&mut self, host_dir: &Path, path_in_rootfs: &str) -> io::Result<()> {
        let rel = rootfs_relative(path_in_rootfs)?;
        if !rel.is_empty() {
            let meta = fs::metadata(host_dir)?;
            let attrs = self.attrs_of(&meta);
            self.dir_with(&rel, &attrs)?;
        }
        self.add_children(host_dir, &rel)
    }

    fn add_children(&mut self, host_dir: &Path, rel: &str) -> io::Result<()> {
        let mut entries: Vec<fs::DirEntry> = fs::read_dir(host_dir)?.collect::<io::Result<_>>()?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name();
            let Some(name) = name.to_str() else {
                return Err(invalid(format!(
                    "{}: file name is not UTF-8",
                    e.path().display()
                )));
            };
            let child = if rel.is_empty() {
                name.to_string()
            } else {
                format!("{rel}/{name}")
            };
            let meta = fs::symlink_metadata(e.path())?;
            let attrs = self.attrs_of(&meta);
            let ft = meta.file_type();
            if ft.is_dir() {
                self.dir_with(&child, &attrs)?;
                self.add_children(&e.path(), &child)?;
            } else if ft.is_symlink() {
                let target = fs::read_link(e.path())?;
                let Some(target) = target.to_str() else {
                    return Err(invalid(format!(
                        "{}: link target is not UTF-8",
                        e.path().display()
                    )));
                };
                self.symlink_with(&child, target, &attrs)?;
            } else if ft.is_file() {
                let file = File::open(e.path())?;
                let name = self.claim(&child)?;
                self.append(EntryType::Regular, &name, &attrs, meta.len(), file)?;
            } else if ft.is_fifo() || ft.is_char_device() || ft.is_block_device() {
                let kind = if ft.is_fifo() {
                    EntryType::Fifo
                } else if ft.is_char_device() {
                    EntryType::Char
                } else {
                    EntryType::Block
                };
                self.special(&child, kind, &attrs, meta.rdev())?;
            }
        }
        Ok(())
    }

    /// A fifo or device node.
    fn special(&mut self, rel: &str, kind: EntryType, attrs: &Attrs, rdev: u64) -> io::Result<()> {
        let name = self.claim(rel)?;
        let mut h = Self::header(kind, attrs, 0);
        h.set_device_major(rustix::fs::major(rdev))?;
        h.set_device_minor(rustix::fs::minor(rdev))?;
        self.tar.append_data(&mut h, name, io::empty())
    }

    /// Ends the tar stream and the compression, and returns the output.
    pub fn finish(self) -> io::Result<W> {
        self.tar.into_inner()?.finish()
    }
}

/// Counts bytes read, to catch a file that shrank while it was being archived.
struct Counted<R> {
    inner: R,
    n: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n += n as u64;
        Ok(n)
    }
}
