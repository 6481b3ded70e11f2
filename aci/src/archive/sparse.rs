//! Sparse members, which must be written as holes: a GNU sparse (`S`) header of 512 bytes can
//! describe a file of any size, and writing its holes out as zeros let an 11 KiB image fill
//! 1 GiB of disk.
//!
//! - GNU sparse (the old GNU format): the tar crate reads the map and hands over the expanded
//!   content, holes as runs of zeros that it makes up in memory; the extractor seeks over them.
//! - PAX sparse (`GNU.sparse.*` records, versions 0.0, 0.1 and 1.0, which GNU tar writes with
//!   `--format=pax --sparse`): the tar crate hands over the packed data as a regular file, and
//!   [`PaxSparse`] holds the map to place it; version 1.0 keeps the map at the start of the
//!   data. As in Go's `archive/tar`, an unknown version is an ordinary file.
use std::io::{self, Read};

use crate::AciError;

/// Most bytes of a version 1.0 sparse map (at the start of the member's data): room for
/// about 50,000 segments, far more than a real file has.
const MAX_MAP_BYTES: u64 = 1 << 20;

/// The layout of a sparse file: data segments `(offset, length)` in increasing, disjoint order,
/// and the file's apparent size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SparseMap {
    pub size: u64,
    pub segments: Vec<(u64, u64)>,
}

/// The `GNU.sparse.*` records of a PAX sparse member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PaxSparse {
    /// The member's real name (the header names a `GNUSparseFile.<pid>/` placeholder).
    pub name: Option<Vec<u8>>,
    pub size: u64,
    /// Versions 0.0 and 0.1: the map from the records; `None` for 1.0 (map in the data).
    pub map: Option<Vec<(u64, u64)>>,
}

fn bad(entry: &str, problem: &'static str) -> AciError {
    AciError::BadSparse {
        entry: entry.to_string(),
        problem,
    }
}

fn number(entry: &str, value: &[u8]) -> Result<u64, AciError> {
    std::str::from_utf8(value)
        .ok()
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(entry, "a sparse record is not a number"))
}

fn pairs(entry: &str, numbers: Vec<u64>) -> Result<Vec<(u64, u64)>, AciError> {
    if !numbers.len().is_multiple_of(2) {
        return Err(bad(entry, "the sparse map has an odd count of numbers"));
    }
    Ok(numbers.chunks_exact(2).map(|c| (c[0], c[1])).collect())
}

impl PaxSparse {
    /// The sparse records of a member, `None` when it is not a PAX sparse file.
    pub(crate) fn of<R: Read>(
        entry: &str,
        member: &mut tar::Entry<'_, R>,
    ) -> Result<Option<PaxSparse>, AciError> {
        let header_err = |e| AciError::Extract {
            entry: entry.to_string(),
            op: "parse tar header",
            source: e,
        };
        let Some(exts) = member.pax_extensions().map_err(header_err)? else {
            return Ok(None);
        };
        let (mut major, mut minor, mut name, mut size, mut map) = (None, None, None, None, None);
        // Version 0.0 repeats offset and numbytes records, in order.
        let mut repeated = Vec::new();
        for ext in exts {
            let ext = ext.map_err(header_err)?;
            let value = ext.value_bytes();
            match ext.key_bytes() {
                b"GNU.sparse.major" => major = Some(value.to_vec()),
                b"GNU.sparse.minor" => minor = Some(value.to_vec()),
                b"GNU.sparse.name" => name = Some(value.to_vec()),
                b"GNU.sparse.size" | b"GNU.sparse.realsize" => size = Some(number(entry, value)?),
                b"GNU.sparse.map" => map = Some(value.to_vec()),
                b"GNU.sparse.offset" | b"GNU.sparse.numbytes" => {
                    repeated.push(number(entry, value)?)
                }
                _ => {}
            }
        }
        let v1 = match (major.as_deref(), minor.as_deref()) {
            (Some(b"0"), Some(b"0" | b"1")) => false,
            (Some(b"1"), Some(b"0")) => true,
            (Some(_), _) | (_, Some(_)) => return Ok(None),
            (None, None) if map.is_some() || !repeated.is_empty() => false,
            (None, None) => return Ok(None),
        };
        let size = size.ok_or_else(|| bad(entry, "no GNU.sparse.size or realsize record"))?;
        let map = if v1 {
            None
        } else if let Some(map) = map {
            let numbers = if map.is_empty() {
                Vec::new()
            } else {
                map.split(|&b| b == b',')
                    .map(|n| number(entry, n))
                    .collect::<Result<_, _>>()?
            };
            Some(pairs(entry, numbers)?)
        } else {
            Some(pairs(entry, repeated)?)
        };
        Ok(Some(PaxSparse {
            name: name.filter(|n| !n.is_empty()),
            size,
            map,
        }))
    }

    /// The map and the number of data bytes that follow it. For version 1.0 the map is read
    /// from the start of `data` (decimal numbers, one a line: the segment count, then offset
    /// and length of each, padded to a 512-byte block); `data_size` is the member's size.
    pub(crate) fn map(
        &self,
        entry: &str,
        data: &mut dyn Read,
        data_size: u64,
    ) -> Result<(SparseMap, u64), AciError> {
        let (segments, packed) = match &self.map {
            Some(segments) => (segments.clone(), data_size),
            None => {
                let (segments, used) = read_v1_map(entry, data, data_size)?;
                (segments, data_size - used)
            }
        };
        let map = SparseMap {
            size: self.size,
            segments,
        };
        map.check(entry, packed)?;
        Ok((map, packed))
    }
}

/// Reads a version 1.0 map; returns it and the bytes it took (whole blocks).
fn read_v1_map(
    entry: &str,
    data: &mut dyn Read,
    data_size: u64,
) -> Result<(Vec<(u64, u64)>, u64), AciError> {
    let mut numbers: Vec<u64> = Vec::new();
    let mut wanted: Option<u64> = None;
    let mut line = Vec::new();
    let mut block = [0u8; 512];
    let mut used = 0u64;
    while wanted.is_none_or(|w| (numbers.len() as u64) < w) {
        if used + 512 > data_size.min(MAX_MAP_BYTES) {
            return Err(bad(entry, "the sparse map is truncated or too large"));
        }
        data.read_exact(&mut block).map_err(AciError::Read)?;
        used += 512;
        for &b in &block {
            if wanted.is_some_and(|w| numbers.len() as u64 >= w) {
                break;
            }
            if b != b'\n' {
                line.push(b);
                if line.len() > 20 {
                    return Err(bad(entry, "a sparse record is not a number"));
                }
                continue;
            }
            let n = number(entry, &line)?;
            line.clear();
            match wanted {
                None => {
                    wanted =
                        Some(n.checked_mul(2).ok_or_else(|| {
                            bad(entry, "the sparse map is truncated or too large")
                        })?)
                }
                Some(_) => numbers.push(n),
            }
        }
    }
    Ok((pairs(entry, numbers)?, used))
}

impl SparseMap {
    /// Segments in order, disjoint, inside the file, and holding exactly the `packed` bytes.
    pub(crate) fn check(&self, entry: &str, packed: u64) -> Result<(), AciError> {
        let mut end = 0u64;
        let mut total = 0u64;
        for &(offset, len) in &self.segments {
            if offset < end {
                return Err(bad(entry, "sparse segments overlap or are out of order"));
            }
            end = offset
                .checked_add(len)
                .filter(|&e| e <= self.size)
                .ok_or_else(|| bad(entry, "a sparse segment ends past the file size"))?;
            total += len;
        }
        if total != packed {
            return Err(bad(
                entry,
                "the sparse map does not match the member's data size",
            ));
        }
        Ok(())
    }
}

/// Why [`copy_skipping_zeros`] stopped.
pub(crate) enum CopyError {
    Read(io::Error),
    Write(io::Error),
}

/// Copies `len` bytes of `data` to `file` at its current position, seeking over every chunk
/// that is all zeros instead of writing it (so holes stay holes). Returns the bytes read: less
/// than `len` only when `data` ended.
pub(crate) fn copy_skipping_zeros(
    data: &mut dyn Read,
    file: &mut std::fs::File,
    len: u64,
    buf: &mut [u8],
) -> Result<u64, CopyError> {
    use std::io::{Seek, SeekFrom, Write};
    let mut done = 0u64;
    while done < len {
        let want = buf
            .len()
            .min(usize::try_from(len - done).unwrap_or(usize::MAX));
        let n = match data.read(&mut buf[..want]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        let chunk = &buf[..n];
        let written = if is_zero(chunk) {
            file.seek(SeekFrom::Current(n as i64)).map(|_| ())
        } else {
            file.write_all(chunk)
        };
        written.map_err(CopyError::Write)?;
        done += n as u64;
    }
    Ok(done)
}

fn is_zero(chunk: &[u8]) -> bool {
    let (words, rest) = chunk.split_at(chunk.len() / 8 * 8);
    words
        .chunks_exact(8)
        .all(|w| u64::from_ne_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]) == 0)
        && rest.iter().all(|&b| b == 0)
}
