//! Hand-made tar archives for hostile-input tests: raw ustar headers, so names and link
//! targets can be anything a malicious image might carry.

/// One raw tar entry.
pub struct RawEntry {
    pub name: String,
    /// b'0' file, b'1' hard link, b'2' symlink, b'3' char device, b'5' dir.
    pub kind: u8,
    pub mode: u32,
    pub link: String,
    pub data: Vec<u8>,
}

impl RawEntry {
    pub fn file(name: &str, data: &[u8]) -> RawEntry {
        RawEntry {
            name: name.into(),
            kind: b'0',
            mode: 0o644,
            link: String::new(),
            data: data.to_vec(),
        }
    }
    pub fn dir(name: &str) -> RawEntry {
        RawEntry {
            name: name.into(),
            kind: b'5',
            mode: 0o755,
            link: String::new(),
            data: Vec::new(),
        }
    }
    pub fn symlink(name: &str, target: &str) -> RawEntry {
        RawEntry {
            name: name.into(),
            kind: b'2',
            mode: 0o777,
            link: target.into(),
            data: Vec::new(),
        }
    }
    pub fn hardlink(name: &str, target: &str) -> RawEntry {
        RawEntry {
            name: name.into(),
            kind: b'1',
            mode: 0o644,
            link: target.into(),
            data: Vec::new(),
        }
    }
}

fn octal(field: &mut [u8], value: u64) {
    let s = format!("{:0width$o}", value, width = field.len() - 1);
    field[..s.len()].copy_from_slice(s.as_bytes());
    field[field.len() - 1] = 0;
}

fn header(e: &RawEntry) -> [u8; 512] {
    let mut h = [0u8; 512];
    let name = e.name.as_bytes();
    h[..name.len().min(100)].copy_from_slice(&name[..name.len().min(100)]);
    octal(&mut h[100..108], e.mode as u64);
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], e.data.len() as u64);
    octal(&mut h[136..148], 1_600_000_000);
    h[156] = e.kind;
    let link = e.link.as_bytes();
    h[157..157 + link.len().min(100)].copy_from_slice(&link[..link.len().min(100)]);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    checksum(&mut h);
    h
}

fn pad(out: &mut Vec<u8>) {
    let pad = (512 - out.len() % 512) % 512;
    out.extend(std::iter::repeat_n(0u8, pad));
}

fn checksum(h: &mut [u8; 512]) {
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|b| *b as u32).sum();
    let s = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(s.as_bytes());
}

/// One member as raw bytes: its header and padded data.
pub fn member(e: &RawEntry) -> Vec<u8> {
    let mut out = header(e).to_vec();
    out.extend_from_slice(&e.data);
    pad(&mut out);
    out
}

/// An uncompressed tar of `entries`, with the two zero blocks at the end.
pub fn tar(entries: &[RawEntry]) -> Vec<u8> {
    let members: Vec<Vec<u8>> = entries.iter().map(member).collect();
    tar_of_members(&members)
}

/// An uncompressed tar of raw members (see [`member`], [`gnu_sparse`]).
pub fn tar_of_members(members: &[Vec<u8>]) -> Vec<u8> {
    let mut out = members.concat();
    out.extend(std::iter::repeat_n(0u8, 1024));
    out
}

/// A GNU sparse (`S`) member: a header claiming a file of `size` bytes and up to four data
/// segments `(offset, data)`, every one but the last a multiple of 512 bytes long (the last
/// must end at `size`). What is not in a segment is a hole, which costs the archive nothing.
pub fn gnu_sparse(name: &str, size: u64, segments: &[(u64, &[u8])]) -> Vec<u8> {
    assert!(segments.len() <= 4, "extension headers are not needed here");
    let packed: usize = segments.iter().map(|(_, d)| d.len()).sum();
    let mut e = RawEntry::file(name, &[]);
    e.kind = b'S';
    let mut h = header(&e);
    octal(&mut h[124..136], packed as u64);
    // GNU magic and version instead of POSIX ustar's.
    h[257..265].copy_from_slice(b"ustar  \0");
    for (i, (offset, data)) in segments.iter().enumerate() {
        let at = 386 + i * 24;
        octal(&mut h[at..at + 12], *offset);
        octal(&mut h[at + 12..at + 24], data.len() as u64);
    }
    octal(&mut h[483..495], size);
    checksum(&mut h);
    let mut out = h.to_vec();
    for (_, data) in segments {
        out.extend_from_slice(data);
    }
    pad(&mut out);
    out
}

/// A valid minimal manifest for hostile archives (so only the tested defect is wrong).
pub fn manifest(name: &str) -> Vec<u8> {
    format!(
        r#"{{"acKind":"ImageManifest","acVersion":"0.8.11","name":"{name}","labels":[{{"name":"os","value":"linux"}},{{"name":"arch","value":"amd64"}}]}}"#
    )
    .into_bytes()
}
