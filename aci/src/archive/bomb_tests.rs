//! Images that cost more than they look: sparse members (written as holes, never as zeros) and
//! the size and expansion limits.
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::testutil::{RawTar, Scratch};
use super::{read_aci, AciBuilder, Compression, LimitExceeded, Limits, ReadOptions};
use crate::schema::ImageManifest;
use crate::AciError;

const GIB: u64 = 1 << 30;

fn extract(tar: &[u8], target: &Path, limits: Limits) -> Result<super::AciSummary, AciError> {
    let opts = ReadOptions {
        extract_to: Some(target),
        limits,
        ..ReadOptions::default()
    };
    read_aci(tar, &opts)
}

fn read_at(path: &Path, offset: u64, len: usize) -> Vec<u8> {
    let mut f = std::fs::File::open(path).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    let mut buf = vec![0u8; len];
    f.read_exact(&mut buf).unwrap();
    buf
}

/// A 512-byte block starting with `text`.
fn block(text: &str) -> Vec<u8> {
    let mut b = text.as_bytes().to_vec();
    b.resize(512, 0);
    b
}

/// The file has the apparent size `size`, holds `segments` at their offsets and zeros
/// between them, and uses (almost) no disk.
fn assert_sparse(path: &Path, size: u64, segments: &[(u64, &[u8])]) {
    let meta = std::fs::metadata(path).unwrap();
    assert_eq!(meta.len(), size, "apparent size of {}", path.display());
    assert!(
        meta.blocks() * 512 <= 64 * 4096,
        "{} uses {} bytes on disk: holes were written out",
        path.display(),
        meta.blocks() * 512
    );
    for (offset, data) in segments {
        assert_eq!(read_at(path, *offset, data.len()), *data);
    }
    assert_eq!(read_at(path, 4096, 4096), vec![0u8; 4096]);
    assert_eq!(read_at(path, size - 8192, 4096), vec![0u8; 4096]);
}

#[test]
fn gnu_sparse_members_are_written_as_holes() {
    let (head, middle) = (block("head"), block("middle"));
    let tail = b"tail".to_vec();
    let segments: [(u64, &[u8]); 3] = [(0, &head), (GIB / 2, &middle), (GIB - 4, &tail)];
    let tar = RawTar::image()
        .gnu_sparse(b"rootfs/bomb", GIB, &segments)
        .finish();
    assert!(tar.len() < 8192, "the bomb is {} bytes", tar.len());
    let s = Scratch::new();
    let summary = extract(&tar, &s.target(), Limits::default()).unwrap();
    assert_eq!(summary.rendered_size, GIB);
    assert_sparse(&s.target().join("rootfs/bomb"), GIB, &segments);

    // More segments than the header holds (extension headers), ending in a hole (which GNU
    // tar writes as a last, empty segment at the end of the file).
    let blocks: Vec<Vec<u8>> = (0..30).map(|i| block(&format!("segment {i}"))).collect();
    let mut segments: Vec<(u64, &[u8])> = blocks
        .iter()
        .enumerate()
        .map(|(i, b)| ((i as u64) << 23, b.as_slice()))
        .collect();
    segments.push((GIB, b""));
    let tar = RawTar::image()
        .gnu_sparse(b"rootfs/many", GIB, &segments)
        .finish();
    let s = Scratch::new();
    extract(&tar, &s.target(), Limits::default()).unwrap();
    assert_sparse(&s.target().join("rootfs/many"), GIB, &segments);
}

#[test]
fn pax_sparse_members_of_every_version_are_written_as_holes() {
    let (head, middle) = (block("head"), block("middle"));
    let tail = b"tail".to_vec();
    let segments: [(u64, &[u8]); 3] = [(0, &head), (GIB / 2, &middle), (GIB - 4, &tail)];
    for version in ["0.0", "0.1", "1.0"] {
        let tar = RawTar::image()
            .pax_sparse(version, "rootfs/data/bomb", GIB, &segments)
            .finish();
        let s = Scratch::new();
        let summary = extract(&tar, &s.target(), Limits::default())
            .unwrap_or_else(|e| panic!("version {version}: {e}"));
        assert_eq!(summary.rendered_size, GIB, "version {version}");
        assert_sparse(&s.target().join("rootfs/data/bomb"), GIB, &segments);
        // The placeholder name in the header is not used.
        assert!(!s.target().join("rootfs/GNUSparseFile.1").exists());
    }
}

#[test]
fn broken_sparse_maps_are_refused() {
    let data = block("x");
    type Case<'a> = (&'a str, u64, Vec<(u64, &'a [u8])>);
    let cases: [Case; 3] = [
        ("overlap", GIB, vec![(4096, &data), (4096 + 100, &data)]),
        ("past the end", 1000, vec![(600, &data)]),
        ("out of order", GIB, vec![(8192, &data), (0, &data)]),
    ];
    for (what, size, segments) in cases {
        for version in ["0.1", "1.0"] {
            let tar = RawTar::image()
                .pax_sparse(version, "rootfs/f", size, &segments)
                .finish();
            let err = extract(&tar, &Scratch::new().target(), Limits::default()).unwrap_err();
            assert!(
                matches!(err, AciError::BadSparse { .. }),
                "{what} {version}: {err}"
            );
            assert!(err.to_string().contains("\"rootfs/f\""), "{err}");
        }
    }
}

/// An image with one file of `size` zeros, compressed with `c`.
fn zeros_image(c: Compression, size: usize) -> Vec<u8> {
    let m = ImageManifest::new("example.com/zeros");
    let mut b = AciBuilder::new(Vec::new(), c, &m).unwrap();
    b.add_file("zeros", 0o644, &vec![0u8; size]).unwrap();
    b.finish().unwrap()
}

#[test]
fn zero_bombs_are_stopped_by_the_expansion_limit() {
    let limits = Limits {
        expansion_floor: 1 << 20,
        ..Limits::default()
    };
    for c in [
        Compression::Gzip,
        Compression::Bzip2,
        Compression::Xz,
        Compression::Zstd,
    ] {
        let bomb = zeros_image(c, 16 << 20);
        let s = Scratch::new();
        let err = extract(&bomb, &s.target(), limits).unwrap_err();
        let AciError::Limit(LimitExceeded::Expansion {
            limit,
            compressed,
            uncompressed,
        }) = err
        else {
            panic!("{c}: {err}");
        };
        assert_eq!(limit, 256, "{c}");
        assert!(
            uncompressed > 1 << 20 && uncompressed < 16 << 20,
            "{c}: {err}"
        );
        assert!(uncompressed / 256 > compressed, "{c}: {err}");
        // Nothing near the full size was written.
        let written = std::fs::metadata(s.target().join("rootfs/zeros")).map_or(0, |m| m.len());
        assert!(written < 16 << 20, "{c}: {written} bytes written");
        // A higher limit lets the same image in.
        let roomy = Limits {
            max_expansion_ratio: 1 << 30,
            ..limits
        };
        let summary = extract(&bomb, &Scratch::new().target(), roomy).unwrap();
        assert_eq!(summary.rendered_size, 16 << 20, "{c}");
    }
}

#[test]
fn the_rendered_size_counts_sparse_files_and_hard_links_in_full() {
    let tail = b"tail".to_vec();
    let tar = RawTar::image()
        .gnu_sparse(b"rootfs/bomb", GIB, &[(GIB - 4, &tail)])
        .finish();
    let small = Limits {
        max_rendered_size: GIB / 2,
        ..Limits::default()
    };
    let s = Scratch::new();
    let err = extract(&tar, &s.target(), small).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "image exceeds the size limit: its files add up to more than {} bytes ({GIB} bytes so far); raise the limit only for an image you trust",
            GIB / 2
        )
    );
    assert!(
        !s.target().join("rootfs/bomb").exists(),
        "the member was checked before it was written"
    );
    // Validation alone (no extraction) applies the limit too.
    let err = read_aci(
        &tar[..],
        &ReadOptions {
            limits: small,
            ..ReadOptions::default()
        },
    )
    .unwrap_err();
    assert!(
        matches!(err, AciError::Limit(LimitExceeded::RenderedSize { .. })),
        "{err}"
    );

    let mb = vec![7u8; 1 << 20];
    let linked = RawTar::image()
        .file(b"rootfs/big", &mb)
        .hardlink(b"rootfs/l1", b"rootfs/big")
        .hardlink(b"rootfs/l2", b"rootfs/big")
        .finish();
    let limits = |max| Limits {
        max_rendered_size: max,
        ..Limits::default()
    };
    let err = extract(&linked, &Scratch::new().target(), limits((3 << 20) - 1)).unwrap_err();
    assert!(
        matches!(err, AciError::Limit(LimitExceeded::RenderedSize { seen, .. }) if seen == 3 << 20),
        "{err}"
    );
    let summary = extract(&linked, &Scratch::new().target(), limits(3 << 20)).unwrap();
    assert_eq!(summary.rendered_size, 3 << 20);

    // Earlier layers count towards the limit.
    let err = read_aci(
        &linked[..],
        &ReadOptions {
            limits: limits(4 << 20),
            rendered_before: 2 << 20,
            ..ReadOptions::default()
        },
    )
    .unwrap_err();
    assert!(
        matches!(err, AciError::Limit(LimitExceeded::RenderedSize { seen, .. }) if seen == 5 << 20),
        "{err}"
    );
}
