//! Squashing Docker layers into one ACI: layers are read from the top down, and an entry is
//! kept only if no upper layer already gave its path, deleted it (`.wh.NAME`), hid its
//! directory's lower content (`.wh..wh..opq`) or replaced a parent directory with a file. The
//! result is an uncompressed ACI (`manifest`, `rootfs/...`); its extraction into the store
//! confines every entry again.
use std::collections::HashSet;
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;

use aci::archive::{LimitedDecompressor, Limits};
use tar::{EntryType, Header};

use super::{io_err, DockerError};

const WHITEOUT: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";

/// A layer blob on disk and its digest (for messages).
pub struct Layer {
    pub path: PathBuf,
    pub digest: String,
}

/// Normalises a layer path: `./a/b/` → `a/b`; `None` for the root itself. `..` anywhere is
/// an error: a layer may not reach outside the image.
fn normalize(raw: &[u8], layer: &str) -> Result<Option<String>, DockerError> {
    let text = String::from_utf8_lossy(raw);
    let mut parts = Vec::new();
    for c in text.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                return Err(DockerError::Layer {
                    layer: layer.to_string(),
                    detail: format!("path traversal in entry {text:?}"),
                })
            }
            c => parts.push(c),
        }
    }
    Ok((!parts.is_empty()).then(|| parts.join("/")))
}

fn parent(path: &str) -> Option<&str> {
    path.rsplit_once('/').map(|(p, _)| p)
}

/// `path` and each of its ancestors, nearest first.
fn self_and_ancestors(path: &str) -> impl Iterator<Item = &str> {
    std::iter::successors(Some(path), |p| parent(p))
}

#[derive(Default)]
struct State {
    seen: HashSet<String>,
    seen_nondir: HashSet<String>,
    whiteouts: HashSet<String>,
    opaque: HashSet<String>,
}

impl State {
    fn hidden(&self, path: &str) -> bool {
        if self.seen.contains(path) {
            return true;
        }
        if self_and_ancestors(path).any(|p| self.whiteouts.contains(p)) {
            return true;
        }
        // An opaque root ("") hides everything below the layer that made it.
        if self.opaque.contains("") {
            return true;
        }
        let mut ancestors = self_and_ancestors(path).skip(1);
        ancestors.any(|p| self.opaque.contains(p) || self.seen_nondir.contains(p))
    }
}

/// A header owned by root, dated the epoch.
fn root_header(kind: EntryType, mode: u32) -> Header {
    let mut h = Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(0);
    h
}

/// A fresh header with the entry's type, mode, owner, time, size and device numbers (fields
/// that do not parse become 0, as Go's archive/tar reads them leniently).
fn clean_header(src: &Header, kind: EntryType, size: u64) -> Header {
    let mut h = Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(src.mode().unwrap_or(0o644) & 0o7777);
    h.set_uid(src.uid().unwrap_or(0));
    h.set_gid(src.gid().unwrap_or(0));
    h.set_mtime(src.mtime().unwrap_or(0));
    h.set_size(if kind.is_file() || kind == EntryType::Continuous {
        size
    } else {
        0
    });
    if matches!(kind, EntryType::Char | EntryType::Block) {
        let _ = h.set_device_major(src.device_major().ok().flatten().unwrap_or(0));
        let _ = h.set_device_minor(src.device_minor().ok().flatten().unwrap_or(0));
    }
    h
}

/// Writes the squashed ACI with `manifest` to `out`. `layers` are bottom first.
pub fn squash(
    layers: &[Layer],
    manifest: &[u8],
    out: &mut dyn Write,
    limits: Limits,
) -> Result<(), DockerError> {
    let mut builder = tar::Builder::new(out);
    builder.mode(tar::HeaderMode::Complete);
    let mut h = root_header(EntryType::Regular, 0o644);
    h.set_size(manifest.len() as u64);
    builder
        .append_data(&mut h, "manifest", manifest)
        .map_err(io_err("write the image"))?;
    let mut h = root_header(EntryType::Directory, 0o755);
    builder
        .append_data(&mut h, "rootfs", std::io::empty())
        .map_err(io_err("write the image"))?;

    let mut state = State::default();
    for layer in layers.iter().rev() {
        let mut new_whiteouts = Vec::new();
        let mut new_opaque = Vec::new();
        let file =
            File::open(&layer.path).map_err(io_err(format!("open layer {}", layer.digest)))?;
        let stream = LimitedDecompressor::new(file, limits)
            .map_err(io_err(format!("read layer {}", layer.digest)))?;
        let mut archive = tar::Archive::new(stream);
        let entries = archive
            .entries()
            .map_err(io_err(format!("read layer {}", layer.digest)))?;
        for entry in entries {
            let mut entry = entry.map_err(io_err(format!("read layer {}", layer.digest)))?;
            let raw = entry.path_bytes().into_owned();
            let Some(path) = normalize(&raw, &layer.digest)? else {
                continue;
            };
            let name = path.rsplit('/').next().unwrap_or(&path);
            if name == OPAQUE {
                if let Some(dir) = parent(&path) {
                    new_opaque.push(dir.to_string());
                } else {
                    // An opaque root hides every lower layer's top level.
                    new_opaque.push(String::new());
                }
                continue;
            }
            if let Some(removed) = name.strip_prefix(WHITEOUT) {
                let target = match parent(&path) {
                    Some(dir) => format!("{dir}/{removed}"),
                    None => removed.to_string(),
                };
                new_whiteouts.push(target);
                continue;
            }
            if state.hidden(&path) {
                continue;
            }
            let kind = entry.header().entry_type();
            let mut header = clean_header(entry.header(), kind, entry.size());
            let dest = format!("rootfs/{path}");
            match kind {
                EntryType::Regular
                | EntryType::Continuous
                | EntryType::Directory
                | EntryType::Fifo
                | EntryType::Char
                | EntryType::Block => {
                    builder
                        .append_data(&mut header, &dest, &mut entry)
                        .map_err(io_err("write the image"))?;
                }
                EntryType::Symlink => {
                    let target = entry
                        .link_name_bytes()
                        .map(|t| String::from_utf8_lossy(&t).into_owned())
                        .unwrap_or_default();
                    builder
                        .append_link(&mut header, &dest, &target)
                        .map_err(io_err("write the image"))?;
                }
                EntryType::Link => {
                    let raw_target = entry
                        .link_name_bytes()
                        .map(|t| t.into_owned())
                        .unwrap_or_default();
                    let Some(target) = normalize(&raw_target, &layer.digest)? else {
                        continue;
                    };
                    header.set_size(0);
                    builder
                        .append_link(&mut header, &dest, format!("rootfs/{target}"))
                        .map_err(io_err("write the image"))?;
                }
                // PAX and GNU extension records are read by the tar crate itself.
                _ => continue,
            }
            if kind != EntryType::Directory {
                state.seen_nondir.insert(path.clone());
            }
            state.seen.insert(path);
        }
        state.whiteouts.extend(new_whiteouts);
        state.opaque.extend(new_opaque);
    }
    builder.finish().map_err(io_err("write the image"))?;
    builder
        .into_inner()
        .map_err(io_err("write the image"))?
        .flush()
        .map_err(io_err("write the image"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::io::{Read, Seek, SeekFrom};

    fn layer(dir: &std::path::Path, name: &str, entries: &[(&str, Option<&[u8]>)]) -> Layer {
        let path = dir.join(name);
        let mut b = tar::Builder::new(File::create(&path).unwrap());
        for (p, data) in entries {
            let mut h = Header::new_gnu();
            match data {
                Some(d) => {
                    h.set_entry_type(EntryType::Regular);
                    h.set_size(d.len() as u64);
                    h.set_mode(0o644);
                    b.append_data(&mut h, p, *d).unwrap();
                }
                None => {
                    h.set_entry_type(EntryType::Directory);
                    h.set_size(0);
                    h.set_mode(0o755);
                    b.append_data(&mut h, p, std::io::empty()).unwrap();
                }
            }
        }
        b.finish().unwrap();
        Layer {
            path,
            digest: name.to_string(),
        }
    }

    fn contents(file: &mut File) -> BTreeMap<String, Vec<u8>> {
        file.seek(SeekFrom::Start(0)).unwrap();
        let mut a = tar::Archive::new(file);
        let mut out = BTreeMap::new();
        for e in a.entries().unwrap() {
            let mut e = e.unwrap();
            let p = String::from_utf8_lossy(&e.path_bytes()).into_owned();
            let mut d = Vec::new();
            e.read_to_end(&mut d).unwrap();
            assert!(out.insert(p, d).is_none(), "duplicate entry");
        }
        out
    }

    #[test]
    fn upper_layers_win_and_whiteouts_remove() {
        let dir = tempfile::tempdir().unwrap();
        let base = layer(
            dir.path(),
            "base",
            &[
                ("etc/", None),
                ("etc/keep", Some(b"base")),
                ("etc/gone", Some(b"x")),
                ("etc/changed", Some(b"old")),
                ("var/", None),
                ("var/cache/", None),
                ("var/cache/a", Some(b"a")),
                ("bin", Some(b"file")),
            ],
        );
        let top = layer(
            dir.path(),
            "top",
            &[
                ("etc/", None),
                ("etc/.wh.gone", Some(b"")),
                ("etc/changed", Some(b"new")),
                ("var/cache/", None),
                ("var/cache/.wh..wh..opq", Some(b"")),
                ("var/cache/b", Some(b"b")),
                ("./new", Some(b"n")),
            ],
        );
        let mut out = tempfile::tempfile().unwrap();
        squash(&[base, top], b"{}", &mut out, Limits::default()).unwrap();
        let c = contents(&mut out);
        assert_eq!(c["rootfs/etc/keep"], b"base");
        assert_eq!(c["rootfs/etc/changed"], b"new");
        assert!(!c.contains_key("rootfs/etc/gone"));
        assert!(!c.contains_key("rootfs/var/cache/a"));
        assert_eq!(c["rootfs/var/cache/b"], b"b");
        assert_eq!(c["rootfs/new"], b"n");
        assert_eq!(c["rootfs/bin"], b"file");
        assert!(c.contains_key("manifest") && c.contains_key("rootfs"));
        assert!(!c.keys().any(|k| k.contains(".wh.")));
    }

    #[test]
    fn traversal_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = tar::Builder::new(File::create(dir.path().join("evil")).unwrap());
        let mut h = Header::new_gnu();
        h.set_entry_type(EntryType::Regular);
        h.set_size(1);
        h.set_mode(0o644);
        // set_path refuses `..`; write the raw name.
        h.as_old_mut().name[..12].copy_from_slice(b"../../escape");
        h.set_cksum();
        b.append(&h, &b"x"[..]).unwrap();
        b.finish().unwrap();
        drop(b);
        let evil = Layer {
            path: dir.path().join("evil"),
            digest: "sha256:evil".into(),
        };
        let mut out = tempfile::tempfile().unwrap();
        let err = squash(&[evil], b"{}", &mut out, Limits::default()).unwrap_err();
        assert!(err.to_string().contains("path traversal"), "{err}");
    }
}
