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
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|b| *b as u32).sum();
    let s = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(s.as_bytes());
    h
}

/// An uncompressed tar of `entries`, with the two zero blocks at the end.
pub fn tar(entries: &[RawEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        out.extend_from_slice(&header(e));
        out.extend_from_slice(&e.data);
        let pad = (512 - e.data.len() % 512) % 512;
        out.extend(std::iter::repeat_n(0u8, pad));
    }
    out.extend(std::iter::repeat_n(0u8, 1024));
    out
}

/// A valid minimal manifest for hostile archives (so only the tested defect is wrong).
pub fn manifest(name: &str) -> Vec<u8> {
    format!(
        r#"{{"acKind":"ImageManifest","acVersion":"0.8.11","name":"{name}","labels":[{{"name":"os","value":"linux"}},{{"name":"arch","value":"amd64"}}]}}"#
    )
    .into_bytes()
}
