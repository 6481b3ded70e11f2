//! Reading one file out of an uncompressed ACI stream, for callers that verify the stream's
//! hash themselves (the store, which runs stage1 entrypoints from a verified copy).
use std::io::{self, Read, Write};

use super::read::normalize;
use super::sparse::PaxSparse;
use crate::AciError;

/// What [`copy_rootfs_file`] found at the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootfsFile {
    /// A regular file, copied out.
    Copied,
    /// A hard link to this earlier member (a normalised archive path, `rootfs/...`), whose
    /// content the stream has already passed: read the stream again for it.
    HardLink(String),
    /// Nothing there, or not a regular file (directory, symlink, device, ...).
    NotRegular,
}

fn copy_err(entry: &str, e: io::Error) -> AciError {
    AciError::Extract {
        entry: entry.to_string(),
        op: "copy out",
        source: e,
    }
}

/// The archive path (`rootfs/...`) of `path` inside the rootfs; `./` and `/` prefixes are
/// dropped. `None` for the rootfs itself and for paths with `..`.
pub fn rootfs_member_path(path: &str) -> Option<String> {
    let norm = normalize(path.trim_start_matches('/').as_bytes())?;
    if norm.is_empty() {
        return None;
    }
    Some(format!("rootfs/{}", String::from_utf8_lossy(&norm)))
}

/// Finds the member `rootfs/<path>` in the uncompressed tar stream `tar` and, if it is a
/// regular file of at most `max_size` bytes, copies its content to `out` (sparse files with
/// their holes filled in). Returns as soon as the member was handled: the caller reads the rest
/// of the stream (to check its hash). A larger file is [`AciError::MemberTooLarge`], before
/// anything is written.
pub fn copy_rootfs_file<R: Read>(
    tar: R,
    path: &str,
    out: &mut dyn Write,
    max_size: u64,
) -> Result<RootfsFile, AciError> {
    let Some(wanted) = rootfs_member_path(path) else {
        return Ok(RootfsFile::NotRegular);
    };
    let mut archive = tar::Archive::new(tar);
    for entry in archive.entries().map_err(AciError::Read)? {
        let mut entry = entry.map_err(AciError::Read)?;
        let etype = entry.header().entry_type();
        let header_name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let sparse = match etype {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                PaxSparse::of(&header_name, &mut entry)?
            }
            _ => None,
        };
        let raw = match sparse.as_ref().and_then(|s| s.name.clone()) {
            Some(name) => name,
            None => entry.path_bytes().into_owned(),
        };
        if normalize(&raw).as_deref() != Some(wanted.as_bytes()) {
            continue;
        }
        let entry_name = String::from_utf8_lossy(&raw).into_owned();
        return match etype {
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let size = match &sparse {
                    Some(s) => s.size,
                    None => entry.size(),
                };
                if size > max_size {
                    return Err(AciError::MemberTooLarge {
                        entry: entry_name,
                        size,
                        max: max_size,
                    });
                }
                match sparse {
                    Some(s) => {
                        let data_size = entry.size();
                        let (map, _) = s.map(&entry_name, &mut entry, data_size)?;
                        copy_sparse(&entry_name, &mut entry, out, &map)?;
                    }
                    None => {
                        let n = io::copy(&mut (&mut entry).take(size), out)
                            .map_err(|e| copy_err(&entry_name, e))?;
                        if n != size {
                            return Err(AciError::Truncated {
                                entry: entry_name,
                                expected: size,
                                got: n,
                            });
                        }
                    }
                }
                Ok(RootfsFile::Copied)
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .and_then(|t| normalize(&t))
                    .map(|t| String::from_utf8_lossy(&t).into_owned());
                Ok(match target {
                    Some(t) if t.starts_with("rootfs/") => RootfsFile::HardLink(t),
                    _ => RootfsFile::NotRegular,
                })
            }
            _ => Ok(RootfsFile::NotRegular),
        };
    }
    Ok(RootfsFile::NotRegular)
}

/// Receives the regular files of an image's rootfs from [`copy_rootfs_files`].
pub trait RootfsSink: Write {
    /// A regular file at `path` (inside the rootfs, no leading `/`) of `size` bytes: whether
    /// to receive its content, which is then written to `self` in full, followed by
    /// [`RootfsSink::end`].
    fn begin(&mut self, path: &str, size: u64) -> bool;
    /// The content of the file that [`RootfsSink::begin`] accepted is complete.
    fn end(&mut self) -> io::Result<()>;
}

/// Streams every regular file of the rootfs in the uncompressed tar `tar` to `sink`, in
/// archive order (sparse files with their holes filled in; hard links are not files of their
/// own). Stops at the end marker: the caller reads the rest of the stream to check its hash.
pub fn copy_rootfs_files<R: Read>(tar: R, sink: &mut dyn RootfsSink) -> Result<(), AciError> {
    let mut archive = tar::Archive::new(tar);
    for entry in archive.entries().map_err(AciError::Read)? {
        let mut entry = entry.map_err(AciError::Read)?;
        let etype = entry.header().entry_type();
        if !matches!(
            etype,
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse
        ) {
            continue;
        }
        let header_name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let sparse = match etype {
            tar::EntryType::GNUSparse => None,
            _ => PaxSparse::of(&header_name, &mut entry)?,
        };
        let raw = match sparse.as_ref().and_then(|s| s.name.clone()) {
            Some(name) => name,
            None => entry.path_bytes().into_owned(),
        };
        let Some(norm) = normalize(&raw) else {
            continue;
        };
        let Some(rel) = norm.strip_prefix(b"rootfs/") else {
            continue;
        };
        let entry_name = String::from_utf8_lossy(&raw).into_owned();
        let size = match &sparse {
            Some(s) => s.size,
            None => entry.size(),
        };
        if !sink.begin(&String::from_utf8_lossy(rel), size) {
            continue;
        }
        match sparse {
            Some(s) => {
                let data_size = entry.size();
                let (map, _) = s.map(&entry_name, &mut entry, data_size)?;
                copy_sparse(&entry_name, &mut entry, sink, &map)?;
            }
            None => {
                let n = io::copy(&mut (&mut entry).take(size), sink)
                    .map_err(|e| copy_err(&entry_name, e))?;
                if n != size {
                    return Err(AciError::Truncated {
                        entry: entry_name,
                        expected: size,
                        got: n,
                    });
                }
            }
        }
        sink.end().map_err(|e| copy_err(&entry_name, e))?;
    }
    Ok(())
}

/// Writes a PAX sparse file's content in full: zeros for the holes.
fn copy_sparse(
    entry: &str,
    data: &mut dyn Read,
    out: &mut dyn Write,
    map: &super::sparse::SparseMap,
) -> Result<(), AciError> {
    let mut pos = 0u64;
    for &(offset, len) in &map.segments {
        io::copy(&mut io::repeat(0).take(offset - pos), out).map_err(|e| copy_err(entry, e))?;
        let n = io::copy(&mut data.take(len), out).map_err(|e| copy_err(entry, e))?;
        if n != len {
            return Err(AciError::Truncated {
                entry: entry.to_string(),
                expected: len,
                got: n,
            });
        }
        pos = offset + len;
    }
    io::copy(&mut io::repeat(0).take(map.size - pos), out).map_err(|e| copy_err(entry, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::testutil::RawTar;

    fn copy(tar: &[u8], path: &str, max: u64) -> (Result<RootfsFile, AciError>, Vec<u8>) {
        let mut out = Vec::new();
        let r = copy_rootfs_file(tar, path, &mut out, max);
        (r, out)
    }

    /// Collects what it is given.
    #[derive(Default)]
    struct Collect {
        files: Vec<(String, u64, Vec<u8>)>,
        skip: Vec<&'static str>,
    }

    impl Write for Collect {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.files.last_mut().unwrap().2.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl RootfsSink for Collect {
        fn begin(&mut self, path: &str, size: u64) -> bool {
            if self.skip.contains(&path) {
                return false;
            }
            self.files.push((path.to_string(), size, Vec::new()));
            true
        }
        fn end(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_regular_file_is_streamed_once_in_order() {
        let tar = RawTar::image()
            .dir(b"rootfs/bin")
            .file(b"./rootfs/bin/tool", b"binary")
            .symlink(b"rootfs/bin/link", b"tool")
            .hardlink(b"rootfs/bin/hard", b"rootfs/bin/tool")
            .file(b"rootfs/etc/skipped", b"no")
            .file(b"rootfs/etc/empty", b"")
            .finish();
        let mut sink = Collect {
            skip: vec!["etc/skipped"],
            ..Collect::default()
        };
        copy_rootfs_files(&tar[..], &mut sink).unwrap();
        assert_eq!(
            sink.files,
            [
                ("bin/tool".to_string(), 6, b"binary".to_vec()),
                ("etc/empty".to_string(), 0, Vec::new()),
            ]
        );
    }

    #[test]
    fn finds_regular_files_by_any_spelling() {
        let tar = RawTar::image()
            .dir(b"rootfs/bin")
            .file(b"./rootfs/bin/tool", b"binary")
            .symlink(b"rootfs/bin/link", b"tool")
            .hardlink(b"rootfs/bin/hard", b"rootfs/bin/tool")
            .finish();
        for path in ["bin/tool", "/bin/tool", "./bin/tool", "//bin//./tool"] {
            let (r, out) = copy(&tar, path, 100);
            assert_eq!(r.unwrap(), RootfsFile::Copied, "{path}");
            assert_eq!(out, b"binary", "{path}");
        }
        for path in [
            "bin",
            "bin/link",
            "missing",
            "/",
            "",
            "../rootfs/bin/tool",
            "manifest",
        ] {
            let (r, out) = copy(&tar, path, 100);
            assert_eq!(r.unwrap(), RootfsFile::NotRegular, "{path}");
            assert!(out.is_empty(), "{path}");
        }
        let (r, _) = copy(&tar, "bin/hard", 100);
        assert_eq!(r.unwrap(), RootfsFile::HardLink("rootfs/bin/tool".into()));
        let (r, out) = copy(&tar, "bin/tool", 5);
        assert!(
            matches!(
                r,
                Err(AciError::MemberTooLarge {
                    size: 6,
                    max: 5,
                    ..
                })
            ),
            "{r:?}"
        );
        assert!(out.is_empty());
    }

    #[test]
    fn sparse_files_come_out_whole() {
        let mut head = b"head".to_vec();
        head.resize(512, 0);
        let segments: [(u64, &[u8]); 2] = [(0, &head), (4096, b"tail")];
        let mut expected = vec![0u8; 4100];
        expected[..4].copy_from_slice(b"head");
        expected[4096..].copy_from_slice(b"tail");
        let gnu = RawTar::image()
            .gnu_sparse(b"rootfs/s", 4100, &segments)
            .finish();
        let pax = RawTar::image()
            .pax_sparse("1.0", "rootfs/s", 4100, &segments)
            .finish();
        for tar in [gnu, pax] {
            let (r, out) = copy(&tar, "s", 4100);
            assert_eq!(r.unwrap(), RootfsFile::Copied);
            assert_eq!(out, expected);
            assert!(copy(&tar, "s", 4099).0.is_err());
        }
    }
}
