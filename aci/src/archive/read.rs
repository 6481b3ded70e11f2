//! One pass over an ACI stream: decompress, hash, validate the layout and the manifest, and
//! optionally extract.
use std::collections::HashMap;
use std::io::{self, Read};

use rustix::fs::FileType;
use tar::EntryType;

use super::extract::{Content, Extractor, Meta};
use super::limits::LimitExceeded;
use super::pipeline::{read_piped, Stream};
use super::sparse::PaxSparse;
use super::{AciSummary, ImageId, ReadOptions, MAX_TRAILING_BYTES};
use crate::schema::ImageManifest;
use crate::AciError;

/// Normalises a member name: a leading `./`, repeated and trailing slashes and `.` components
/// are dropped. `None` for absolute names and names with `..`.
pub(crate) fn normalize(raw: &[u8]) -> Option<Vec<u8>> {
    if raw.first() == Some(&b'/') {
        return None;
    }
    let mut out = Vec::with_capacity(raw.len());
    for comp in raw.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => return None,
            c => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(c);
            }
        }
    }
    Some(out)
}

/// Whether a relative symlink target, read from the directory holding the link (`link` is the
/// link's path inside the rootfs), stays inside the rootfs.
pub(crate) fn symlink_stays_inside(link: &[u8], target: &[u8]) -> bool {
    if target.first() == Some(&b'/') {
        return true;
    }
    let mut depth = link.split(|&b| b == b'/').count() as i64 - 1;
    for comp in target.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            _ => depth += 1,
        }
    }
    true
}

const ROOTFS_PREFIX: &[u8] = b"rootfs/";

struct Reader<'o> {
    opts: &'o ReadOptions<'o>,
    extractor: Option<Extractor>,
    /// Member paths seen so far (normalised), with the apparent size of regular files.
    seen: HashMap<Vec<u8>, Option<u64>>,
    /// Apparent sizes of the regular files so far, earlier layers included.
    rendered: u64,
    manifest: Option<(Vec<u8>, ImageManifest)>,
    has_rootfs: bool,
}

fn header_err(entry: &str, e: io::Error) -> AciError {
    AciError::Extract {
        entry: entry.to_string(),
        op: "parse tar header",
        source: e,
    }
}

fn meta_of(entry: &str, header: &tar::Header) -> Result<Meta, AciError> {
    let id = |v: io::Result<u64>| -> Result<u32, AciError> {
        let v = v.map_err(|e| header_err(entry, e))?;
        u32::try_from(v).map_err(|_| {
            header_err(
                entry,
                io::Error::new(io::ErrorKind::InvalidData, "owner id out of range"),
            )
        })
    };
    Ok(Meta {
        mode: header.mode().map_err(|e| header_err(entry, e))? & 0o7777,
        uid: id(header.uid())?,
        gid: id(header.gid())?,
        mtime: i64::try_from(header.mtime().map_err(|e| header_err(entry, e))?).unwrap_or(i64::MAX),
    })
}

fn is_regular(t: EntryType) -> bool {
    matches!(
        t,
        EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse
    )
}

impl Reader<'_> {
    /// Disk path (relative to the target) of a normalised archive path under `rootfs/`.
    fn disk_path<'p>(&self, norm: &'p [u8]) -> &'p [u8] {
        if self.opts.rootfs_only {
            &norm[ROOTFS_PREFIX.len()..]
        } else {
            norm
        }
    }

    fn member<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), AciError> {
        let etype = entry.header().entry_type();
        if etype.is_pax_global_extensions() {
            return Ok(());
        }
        let header_name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let sparse = match etype {
            EntryType::Regular | EntryType::Continuous => PaxSparse::of(&header_name, entry)?,
            _ => None,
        };
        // A PAX sparse member's header names a placeholder; its real name is a record.
        let raw = match sparse.as_ref().and_then(|s| s.name.clone()) {
            Some(name) => name,
            None => entry.path_bytes().into_owned(),
        };
        let name = String::from_utf8_lossy(&raw).into_owned();
        let norm = normalize(&raw).ok_or_else(|| AciError::UnsafePath {
            entry: name.clone(),
        })?;
        if norm.is_empty() {
            return Ok(());
        }
        if !self.opts.overwrite && self.seen.contains_key(&norm) {
            return Err(AciError::Duplicate { entry: name });
        }
        let size = if norm == b"manifest" {
            if sparse.is_some() {
                return Err(AciError::ManifestNotRegular { entry: name });
            }
            self.manifest_entry(&name, entry)?;
            None
        } else if norm == b"rootfs" {
            if etype != EntryType::Directory {
                return Err(AciError::RootfsNotDir { entry: name });
            }
            self.has_rootfs = true;
            let meta = meta_of(&name, entry.header())?;
            let rel: &[u8] = if self.opts.rootfs_only {
                b""
            } else {
                b"rootfs"
            };
            if let Some(x) = &mut self.extractor {
                x.dir(&name, rel, &meta)?;
            }
            None
        } else if norm.starts_with(ROOTFS_PREFIX) {
            self.has_rootfs = true;
            self.rootfs_entry(&name, &norm, entry, sparse.as_ref())?
        } else {
            return Err(AciError::OutsideRootfs { entry: name });
        };
        self.seen.insert(norm, size);
        Ok(())
    }

    /// Counts a regular file's apparent size against the rendered-size limit, before any of it
    /// is written.
    fn count(&mut self, size: u64) -> Result<(), AciError> {
        self.rendered = self.rendered.saturating_add(size);
        let limit = self.opts.limits.max_rendered_size;
        if self.rendered > limit {
            return Err(LimitExceeded::RenderedSize {
                limit,
                seen: self.rendered,
            }
            .into());
        }
        Ok(())
    }

    fn manifest_entry<R: Read>(
        &mut self,
        name: &str,
        entry: &mut tar::Entry<'_, R>,
    ) -> Result<(), AciError> {
        if !matches!(
            entry.header().entry_type(),
            EntryType::Regular | EntryType::Continuous
        ) {
            return Err(AciError::ManifestNotRegular {
                entry: name.to_string(),
            });
        }
        let size = entry.size();
        let max = self.opts.max_manifest_size;
        if size > max as u64 {
            return Err(AciError::ManifestTooLarge {
                entry: name.to_string(),
                size,
                max,
            });
        }
        let mut bytes = Vec::with_capacity(size as usize);
        entry.read_to_end(&mut bytes).map_err(AciError::Read)?;
        if bytes.len() as u64 != size {
            return Err(AciError::Truncated {
                entry: name.to_string(),
                expected: size,
                got: bytes.len() as u64,
            });
        }
        let manifest = ImageManifest::from_slice(&bytes).map_err(AciError::InvalidManifest)?;
        if !self.opts.rootfs_only {
            if let Some(x) = &mut self.extractor {
                let meta = meta_of(name, entry.header())?;
                x.file(
                    name,
                    b"manifest",
                    &meta,
                    &mut bytes.as_slice(),
                    Content::Plain(size),
                    &[],
                )?;
            }
        }
        self.manifest = Some((bytes, manifest));
        Ok(())
    }

    /// Returns the apparent size of a regular file (or of a hard link's target).
    fn rootfs_entry<R: Read>(
        &mut self,
        name: &str,
        norm: &[u8],
        entry: &mut tar::Entry<'_, R>,
        sparse: Option<&PaxSparse>,
    ) -> Result<Option<u64>, AciError> {
        let etype = entry.header().entry_type();
        let meta = meta_of(name, entry.header())?;
        let rel = self.disk_path(norm).to_vec();
        match etype {
            t if is_regular(t) => {
                let xattrs = xattrs(name, entry)?;
                // For a GNU sparse member the tar crate reports the apparent size.
                let size = entry.size();
                let map = match sparse {
                    Some(s) => Some(s.map(name, entry, size)?.0),
                    None => None,
                };
                let apparent = map.as_ref().map_or(size, |m| m.size);
                self.count(apparent)?;
                let content = match &map {
                    Some(map) => Content::Packed(map),
                    None if t == EntryType::GNUSparse => Content::Expanded(size),
                    None => Content::Plain(size),
                };
                if let Some(x) = &mut self.extractor {
                    x.file(name, &rel, &meta, entry, content, &xattrs)?;
                }
                return Ok(Some(apparent));
            }
            EntryType::Directory => {
                if let Some(x) = &mut self.extractor {
                    x.dir(name, &rel, &meta)?;
                }
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| t.into_owned())
                    .unwrap_or_default();
                if target.is_empty() {
                    return Err(AciError::EmptySymlink {
                        entry: name.to_string(),
                    });
                }
                if !symlink_stays_inside(&norm[ROOTFS_PREFIX.len()..], &target) {
                    return Err(AciError::SymlinkEscape {
                        entry: name.to_string(),
                        target: String::from_utf8_lossy(&target).into_owned(),
                    });
                }
                if let Some(x) = &mut self.extractor {
                    x.symlink(name, &rel, &target, &meta)?;
                }
            }
            EntryType::Link => return self.hardlink(name, &rel, entry),
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let kind = match etype {
                    EntryType::Char => FileType::CharacterDevice,
                    EntryType::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                // Fifos carry no device number (writers often leave the fields empty).
                let h = entry.header();
                let dev = if kind == FileType::Fifo {
                    (0, 0)
                } else {
                    (
                        h.device_major()
                            .map_err(|e| header_err(name, e))?
                            .unwrap_or(0),
                        h.device_minor()
                            .map_err(|e| header_err(name, e))?
                            .unwrap_or(0),
                    )
                };
                if let Some(x) = &mut self.extractor {
                    x.device(name, &rel, kind, dev, &meta)?;
                }
            }
            other => {
                return Err(AciError::UnsupportedType {
                    entry: name.to_string(),
                    kind: other.as_byte() as char,
                })
            }
        }
        Ok(None)
    }

    /// Hard links must name a regular file under `rootfs/` that this archive (or, when
    /// rendering over dependencies, an earlier layer) already put in the tree. A link counts
    /// like a copy of its target (copy mode and export write it out as one); a target from an
    /// earlier layer was counted there.
    fn hardlink<R: Read>(
        &mut self,
        name: &str,
        rel: &[u8],
        entry: &tar::Entry<'_, R>,
    ) -> Result<Option<u64>, AciError> {
        let raw = entry
            .link_name_bytes()
            .map(|t| t.into_owned())
            .unwrap_or_default();
        let bad = |problem| AciError::BadHardLink {
            entry: name.to_string(),
            target: String::from_utf8_lossy(&raw).into_owned(),
            problem,
        };
        let target = normalize(&raw)
            .filter(|t| t.starts_with(ROOTFS_PREFIX))
            .ok_or_else(|| bad("is outside rootfs/"))?;
        let target_disk = self.disk_path(&target).to_vec();
        let size = match self.seen.get(&target) {
            Some(Some(size)) => *size,
            Some(None) => return Err(bad("is not a regular file")),
            None => {
                let earlier = match &mut self.extractor {
                    Some(x) if self.opts.overwrite => x.is_regular(name, &target_disk),
                    _ => false,
                };
                if !earlier {
                    return Err(bad("does not name an earlier regular file"));
                }
                0
            }
        };
        self.count(size)?;
        if let Some(x) = &mut self.extractor {
            x.hardlink(name, rel, &target_disk)?;
        }
        Ok(Some(size))
    }
}

const XATTR_PREFIX: &str = "SCHILY.xattr.";

/// Extended attributes to set on a file: (name, value).
type Xattrs = Vec<(Vec<u8>, Vec<u8>)>;

/// PAX xattrs worth restoring (rkt's list: `user.*` and `security.capability`).
fn xattrs<R: Read>(name: &str, entry: &mut tar::Entry<'_, R>) -> Result<Xattrs, AciError> {
    let mut out = Vec::new();
    let Some(exts) = entry.pax_extensions().map_err(|e| header_err(name, e))? else {
        return Ok(out);
    };
    for ext in exts {
        let ext = ext.map_err(|e| header_err(name, e))?;
        let Ok(key) = ext.key() else { continue };
        if let Some(attr) = key.strip_prefix(XATTR_PREFIX) {
            if attr.starts_with("user.") || attr == "security.capability" {
                out.push((attr.as_bytes().to_vec(), ext.value_bytes().to_vec()));
            }
        }
    }
    Ok(out)
}

/// Reads what follows the tar end-of-archive marker (the stream is positioned after its first
/// zero block) to the end, so that the image ID covers it. Writers pad with zeros to a record
/// boundary (GNU tar: 10240 bytes); anything else, or more than [`MAX_TRAILING_BYTES`], is
/// refused, so that an endless stream (`/dev/zero`) cannot keep the reader busy forever.
fn check_end_padding<R: Read>(rest: &mut R) -> Result<(), AciError> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut seen: u64 = 0;
    loop {
        let n = match rest.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(AciError::Read(e)),
        };
        if let Some(i) = buf[..n].iter().position(|&b| b != 0) {
            return Err(AciError::TrailingData {
                offset: seen + i as u64,
            });
        }
        seen += n as u64;
        if seen > MAX_TRAILING_BYTES {
            return Err(AciError::TrailingTooLong {
                max: MAX_TRAILING_BYTES,
            });
        }
    }
}

/// Reads a possibly compressed ACI stream exactly once: detects the compression, hashes the
/// whole uncompressed stream (padding after the tar end included, so the ID equals `sha512sum`
/// of the decompressed file; at most [`MAX_TRAILING_BYTES`] of zeros may follow the end of the
/// archive), checks the layout (a regular `manifest` and a `rootfs/` tree, nothing else),
/// parses and validates the manifest and, with `extract_to`, extracts into that existing
/// directory (see [`ReadOptions`]). Sparse members are written as holes. Going past
/// `opts.limits` stops the read with [`AciError::Limit`]: the rendered size is checked from each
/// member's header before anything of it is written, the expansion ratio as the stream is
/// decompressed. On error, whatever was extracted so far is left for the caller to remove;
/// nothing is ever written outside the target.
///
/// `input` is read and decompressed on the calling thread while two scoped threads hash and
/// unpack the stream (see the `pipeline` module); all three have stopped when this returns.
pub fn read_aci<R: Read>(input: R, opts: &ReadOptions) -> Result<AciSummary, AciError> {
    read_piped(input, opts.limits, |stream| {
        // The expansion limit surfaces as an I/O error from wherever the stream was being read
        // (a header, a member's data, the end padding); report it as what it is.
        read_stream(stream, opts).map_err(|e| match stream.limit() {
            Some(limit) => AciError::Limit(limit),
            None => e,
        })
    })
}

fn read_stream(stream: &mut Stream, opts: &ReadOptions) -> Result<AciSummary, AciError> {
    let mut archive = tar::Archive::new(&mut *stream);
    let mut state = Reader {
        opts,
        extractor: opts
            .extract_to
            .map(|dir| Extractor::new(dir, opts.overwrite))
            .transpose()?,
        seen: HashMap::new(),
        rendered: opts.rendered_before,
        manifest: None,
        has_rootfs: false,
    };
    for entry in archive.entries().map_err(AciError::Read)? {
        let mut entry = entry.map_err(AciError::Read)?;
        state.member(&mut entry)?;
    }
    // Layout errors first: a stream of zeros ends at its first block, and "no manifest" says
    // more about it than the trailing-data limit would.
    let (manifest_bytes, manifest) = state.manifest.take().ok_or(AciError::MissingManifest)?;
    if !state.has_rootfs {
        return Err(AciError::MissingRootfs);
    }
    check_end_padding(&mut archive.into_inner())?;
    if let Some(x) = state.extractor.take() {
        x.finish()?;
    }
    let end = stream
        .end()
        .expect("bug: the stream was read to its end without reaching it");
    Ok(AciSummary {
        id: ImageId::from_digest(&end.digest),
        manifest,
        manifest_bytes,
        tar_size: end.size,
        compression: end.compression,
        rendered_size: state.rendered - opts.rendered_before,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(normalize(b"./rootfs//bin/./sh/").unwrap(), b"rootfs/bin/sh");
        assert_eq!(normalize(b"manifest").unwrap(), b"manifest");
        assert_eq!(normalize(b"./").unwrap(), b"");
        assert!(normalize(b"/etc/passwd").is_none());
        assert!(normalize(b"rootfs/../../x").is_none());
        assert!(normalize(b"rootfs/a/..").is_none());
    }

    #[test]
    fn symlink_targets() {
        assert!(symlink_stays_inside(b"bin/sh", b"busybox"));
        assert!(symlink_stays_inside(b"bin/sh", b"../usr/bin/busybox"));
        assert!(symlink_stays_inside(b"bin/sh", b"/bin/busybox"));
        assert!(symlink_stays_inside(b"a/b/c", b"../../x/../y"));
        assert!(symlink_stays_inside(b"lib", b"."));
        assert!(!symlink_stays_inside(b"bin/sh", b"../../etc/passwd"));
        assert!(!symlink_stays_inside(b"x", b".."));
        assert!(!symlink_stays_inside(b"a/b", b"c/../../../d"));
    }
}
