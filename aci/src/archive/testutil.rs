//! Helpers for the archive tests: hand-made tars with arbitrary (hostile) names, and a check
//! that nothing outside the extraction target changed.
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use tar::{EntryType, GnuExtSparseHeader, Header};

pub(crate) const MANIFEST: &str =
    r#"{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/test"}"#;

/// Builds a tar stream header by header; names and link names are copied as raw bytes.
pub(crate) struct RawTar {
    pub buf: Vec<u8>,
}

pub(crate) struct Spec<'a> {
    pub kind: EntryType,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub link: &'a [u8],
    pub dev: (u32, u32),
}

impl Default for Spec<'_> {
    fn default() -> Self {
        Spec {
            kind: EntryType::Regular,
            mode: 0o644,
            uid: 0,
            gid: 0,
            link: b"",
            dev: (0, 0),
        }
    }
}

impl RawTar {
    pub fn new() -> RawTar {
        RawTar { buf: Vec::new() }
    }

    /// A tar that starts with a valid manifest and the rootfs directory.
    pub fn image() -> RawTar {
        let mut t = RawTar::new();
        t.file(b"manifest", MANIFEST.as_bytes());
        t.dir(b"rootfs");
        t
    }

    pub fn raw(&mut self, name: &[u8], spec: Spec<'_>, data: &[u8]) -> &mut Self {
        let mut h = Header::new_ustar();
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.as_old_mut().linkname[..spec.link.len()].copy_from_slice(spec.link);
        h.set_entry_type(spec.kind);
        h.set_mode(spec.mode);
        h.set_uid(spec.uid);
        h.set_gid(spec.gid);
        h.set_mtime(1_500_000_000);
        h.set_size(data.len() as u64);
        if matches!(spec.kind, EntryType::Char | EntryType::Block) {
            h.set_device_major(spec.dev.0).unwrap();
            h.set_device_minor(spec.dev.1).unwrap();
        }
        h.set_cksum();
        self.buf.extend_from_slice(h.as_bytes());
        self.buf.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.buf.extend(std::iter::repeat_n(0u8, pad));
        self
    }

    pub fn file(&mut self, name: &[u8], data: &[u8]) -> &mut Self {
        self.raw(name, Spec::default(), data)
    }

    pub fn dir(&mut self, name: &[u8]) -> &mut Self {
        self.dir_mode(name, 0o755)
    }

    pub fn dir_mode(&mut self, name: &[u8], mode: u32) -> &mut Self {
        let spec = Spec {
            kind: EntryType::Directory,
            mode,
            ..Spec::default()
        };
        self.raw(name, spec, b"")
    }

    pub fn symlink(&mut self, name: &[u8], target: &[u8]) -> &mut Self {
        let spec = Spec {
            kind: EntryType::Symlink,
            mode: 0o777,
            link: target,
            ..Spec::default()
        };
        self.raw(name, spec, b"")
    }

    pub fn hardlink(&mut self, name: &[u8], target: &[u8]) -> &mut Self {
        let spec = Spec {
            kind: EntryType::Link,
            link: target,
            ..Spec::default()
        };
        self.raw(name, spec, b"")
    }

    /// A GNU sparse (`S`) member of apparent size `size`: each segment's data is placed at its
    /// offset. Every segment but the last must be a multiple of 512 bytes long; more than four
    /// segments go to extension headers.
    pub fn gnu_sparse(&mut self, name: &[u8], size: u64, segments: &[(u64, &[u8])]) -> &mut Self {
        let mut h = Header::new_gnu();
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_entry_type(EntryType::GNUSparse);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_500_000_000);
        let packed: usize = segments.iter().map(|(_, d)| d.len()).sum();
        h.set_size(packed as u64);
        let gnu = h.as_gnu_mut().unwrap();
        gnu.set_real_size(size);
        for (slot, (offset, data)) in gnu.sparse.iter_mut().zip(segments) {
            slot.set_offset(*offset);
            slot.set_length(data.len() as u64);
        }
        let ext: Vec<&[(u64, &[u8])]> = segments[segments.len().min(4)..].chunks(21).collect();
        gnu.set_is_extended(!ext.is_empty());
        h.set_cksum();
        self.buf.extend_from_slice(h.as_bytes());
        for (i, chunk) in ext.iter().enumerate() {
            let mut e = GnuExtSparseHeader::new();
            for (slot, (offset, data)) in e.sparse_mut().iter_mut().zip(chunk.iter()) {
                slot.set_offset(*offset);
                slot.set_length(data.len() as u64);
            }
            e.set_is_extended(i + 1 < ext.len());
            self.buf.extend_from_slice(e.as_bytes());
        }
        for (_, data) in segments {
            self.buf.extend_from_slice(data);
        }
        self.buf
            .extend(std::iter::repeat_n(0u8, (512 - packed % 512) % 512));
        self
    }

    /// A PAX sparse member as GNU tar writes it (`--sparse-version` 0.0, 0.1 or 1.0): a
    /// placeholder name in the header, the real name and map in `GNU.sparse.*` records (for
    /// 1.0 the map starts the data).
    pub fn pax_sparse(
        &mut self,
        version: &str,
        name: &str,
        size: u64,
        segments: &[(u64, &[u8])],
    ) -> &mut Self {
        let mut records = Vec::new();
        let mut data = Vec::new();
        match version {
            "0.0" => {
                records.push(pax_record("GNU.sparse.size", &size.to_string()));
                records.push(pax_record(
                    "GNU.sparse.numblocks",
                    &segments.len().to_string(),
                ));
                for (offset, d) in segments {
                    records.push(pax_record("GNU.sparse.offset", &offset.to_string()));
                    records.push(pax_record("GNU.sparse.numbytes", &d.len().to_string()));
                }
            }
            "0.1" => {
                let map: Vec<String> = segments
                    .iter()
                    .flat_map(|(o, d)| [o.to_string(), d.len().to_string()])
                    .collect();
                records.push(pax_record("GNU.sparse.size", &size.to_string()));
                records.push(pax_record(
                    "GNU.sparse.numblocks",
                    &segments.len().to_string(),
                ));
                records.push(pax_record("GNU.sparse.name", name));
                records.push(pax_record("GNU.sparse.map", &map.join(",")));
            }
            _ => {
                records.push(pax_record("GNU.sparse.major", "1"));
                records.push(pax_record("GNU.sparse.minor", "0"));
                records.push(pax_record("GNU.sparse.name", name));
                records.push(pax_record("GNU.sparse.realsize", &size.to_string()));
                let mut map = format!("{}\n", segments.len());
                for (offset, d) in segments {
                    map.push_str(&format!("{offset}\n{}\n", d.len()));
                }
                data.extend_from_slice(map.as_bytes());
                data.extend(std::iter::repeat_n(0u8, (512 - data.len() % 512) % 512));
            }
        }
        for (_, d) in segments {
            data.extend_from_slice(d);
        }
        let pax = Spec {
            kind: EntryType::XHeader,
            ..Spec::default()
        };
        self.raw(b"PaxHeaders/sparse", pax, &records.concat());
        let placeholder = match version {
            "0.0" => name.to_string(),
            _ => format!("GNUSparseFile.1/{}", name.rsplit('/').next().unwrap()),
        };
        self.raw(placeholder.as_bytes(), Spec::default(), &data)
    }

    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = self.buf.clone();
        out.extend(std::iter::repeat_n(0u8, 1024));
        out
    }
}

/// One PAX record: `"<len> <key>=<value>\n"`, the length counting itself.
pub(crate) fn pax_record(key: &str, value: &str) -> Vec<u8> {
    let body = format!(" {key}={value}\n");
    let mut len = body.len() + 1;
    while format!("{len}{body}").len() != len {
        len += 1;
    }
    format!("{len}{body}").into_bytes()
}

/// A scratch directory holding `target/` (where images are extracted) and `outside/` with a
/// file that must never change.
pub(crate) struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Scratch {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("target")).unwrap();
        std::fs::create_dir(dir.path().join("outside")).unwrap();
        std::fs::write(dir.path().join("outside/precious"), "keep").unwrap();
        Scratch { dir }
    }

    pub fn target(&self) -> PathBuf {
        self.dir.path().join("target")
    }

    pub fn outside(&self) -> PathBuf {
        self.dir.path().join("outside")
    }

    /// Every path of the scratch dir outside `target/`, with its size and mode.
    pub fn outside_snapshot(&self) -> BTreeMap<PathBuf, (u64, u32)> {
        let mut out = BTreeMap::new();
        walk(self.dir.path(), &self.target(), &mut out);
        out
    }
}

fn walk(dir: &Path, skip: &Path, out: &mut BTreeMap<PathBuf, (u64, u32)>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p == skip {
            continue;
        }
        let m = std::fs::symlink_metadata(&p).unwrap();
        out.insert(p.clone(), (m.len(), m.mode()));
        if m.is_dir() {
            walk(&p, skip, out);
        }
    }
}
