//! The three-thread reader (`pipeline`): the image ID is the one-thread SHA-512 of the tar,
//! errors from either end surface as they did on one thread, and a failure on one side stops
//! the other.
use std::io::{self, Cursor, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use sha2::{Digest, Sha512};

use super::pipeline::{CHUNK, POOL};
use super::testutil::{RawTar, Scratch};
use super::{
    read_aci, AciBuilder, AciSummary, Compression, ImageId, LimitExceeded, LimitedDecompressor,
    Limits, ReadOptions,
};
use crate::schema::ImageManifest;
use crate::AciError;

/// More decompressed bytes than the buffers in circulation hold, so that every buffer is
/// reused several times.
const BIG: usize = 3 * POOL * CHUNK;

/// Incompressible bytes (xorshift), so that the compressed stream is long too.
fn noise(len: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn image(c: Compression) -> Vec<u8> {
    let m = ImageManifest::new("example.com/pipeline");
    let mut b = AciBuilder::new(Vec::new(), c, &m).unwrap();
    for i in 0..40 {
        b.add_file(&format!("small/{i}"), 0o644, &noise(1000 + i * 777))
            .unwrap();
    }
    b.add_file("big", 0o644, &noise(BIG)).unwrap();
    b.add_file("odd", 0o644, &noise(CHUNK + 3)).unwrap();
    b.finish().unwrap()
}

/// Reads in odd, small pieces, so that buffers are filled by many reads.
struct Dribble<R>(R, usize);

impl<R: Read> Read for Dribble<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.1 = self.1 % 7919 + 1;
        let n = buf.len().min(self.1);
        self.0.read(&mut buf[..n])
    }
}

/// Serves `data`, then fails with `ConnectionReset`.
struct FailsAfter(Cursor<Vec<u8>>);

impl Read for FailsAfter {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.0.read(buf)? {
            0 => Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "peer went away",
            )),
            n => Ok(n),
        }
    }
}

/// Serves `data`, then zeros forever, counting what it served.
struct Endless {
    data: Cursor<Vec<u8>>,
    served: Arc<AtomicU64>,
}

impl Read for Endless {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut n = self.data.read(buf)?;
        if n == 0 {
            buf.fill(0);
            n = buf.len();
        }
        self.served.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

fn extract(input: impl Read, limits: Limits) -> Result<AciSummary, AciError> {
    let s = Scratch::new();
    let target = s.target();
    let opts = ReadOptions {
        extract_to: Some(&target),
        limits,
        ..ReadOptions::default()
    };
    read_aci(input, &opts)
}

/// Runs `f` on its own thread and fails the test if it has not returned within a minute (a
/// stage waiting forever on a channel would otherwise hang the test run).
fn within_a_minute<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(f()).unwrap());
    rx.recv_timeout(Duration::from_secs(60))
        .expect("read_aci did not return: a pipeline stage is stuck")
}

#[test]
fn the_id_is_the_one_thread_sha512_of_the_tar() {
    for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let aci = image(c);
        let mut tar = Vec::new();
        LimitedDecompressor::new(&aci[..], Limits::default())
            .unwrap()
            .read_to_end(&mut tar)
            .unwrap();
        assert!(tar.len() > BIG, "{c}");
        let expected = ImageId::from_digest(&Sha512::digest(&tar));
        for summary in [
            extract(&aci[..], Limits::default()).unwrap(),
            extract(Dribble(&aci[..], 0), Limits::default()).unwrap(),
            read_aci(&aci[..], &ReadOptions::default()).unwrap(),
        ] {
            assert_eq!(summary.id, expected, "{c}");
            assert_eq!(summary.tar_size, tar.len() as u64, "{c}");
            assert_eq!(summary.compression, c);
        }
    }
}

#[test]
fn an_input_error_mid_stream_is_the_read_error_it_was() {
    for c in [Compression::None, Compression::Zstd] {
        let aci = image(c);
        // Past the first few buffers, and inside a member's data.
        for cut in [1000, aci.len() / 2, aci.len() - 2000] {
            let input = FailsAfter(Cursor::new(aci[..cut].to_vec()));
            let err = within_a_minute(move || extract(input, Limits::default()).unwrap_err());
            let AciError::Read(e) = &err else {
                panic!("{c}, cut at {cut}: {err}");
            };
            assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{c}: {e}");
            assert_eq!(e.to_string(), "peer went away");
        }
    }
}

#[test]
fn a_limit_hit_while_unpacking_stops_the_reader() {
    // A member larger than the rendered-size limit, then an endless input: the unpacking
    // thread refuses the member from its header, and the reading thread must stop too.
    let mut tar = RawTar::image();
    tar.file(b"rootfs/small", b"fine");
    let head = tar.buf.clone();
    let mut tar = RawTar::new();
    tar.file(b"rootfs/huge", &vec![7u8; 1 << 20]);
    let mut data = head;
    data.extend_from_slice(&tar.buf[..512]);
    let served = Arc::new(AtomicU64::new(0));
    let input = Endless {
        data: Cursor::new(data),
        served: served.clone(),
    };
    let limits = Limits {
        max_rendered_size: 1000,
        ..Limits::default()
    };
    let err = within_a_minute(move || extract(input, limits).unwrap_err());
    assert!(
        matches!(
            err,
            AciError::Limit(LimitExceeded::RenderedSize { limit: 1000, .. })
        ),
        "{err}"
    );
    // What was read ahead is bounded by the buffers in circulation (and the decompressor's
    // input buffer), however long the input.
    let served = served.load(Ordering::Relaxed);
    assert!(
        served <= ((POOL + 4) * CHUNK) as u64,
        "{served} bytes read after the unpacker stopped"
    );
}

/// `head` followed by a member of 64 MiB of zeros, zstd-compressed, and limits that stop its
/// expansion at 16x past 1 MiB.
fn zeros_bomb_after(mut head: RawTar) -> (Vec<u8>, Limits) {
    let mut big = RawTar::new();
    big.file(b"rootfs/zeros", &vec![0u8; 64 << 20]);
    head.buf.extend_from_slice(&big.buf);
    let bomb = zstd::encode_all(&head.finish()[..], 19).unwrap();
    let limits = Limits {
        expansion_floor: 1 << 20,
        max_expansion_ratio: 16,
        ..Limits::default()
    };
    (bomb, limits)
}

#[test]
fn a_limit_hit_while_decompressing_stops_the_unpacker() {
    // Endless zeros after a valid start: the reading thread stops at the expansion limit and
    // the unpacking thread, in the middle of a member, reports that limit.
    let mut tar = RawTar::image();
    tar.file(b"rootfs/small", b"fine");
    let err = within_a_minute(move || {
        let (bomb, limits) = zeros_bomb_after(tar);
        extract(&bomb[..], limits).unwrap_err()
    });
    assert!(
        matches!(
            err,
            AciError::Limit(LimitExceeded::Expansion { limit: 16, .. })
        ),
        "{err}"
    );
}

#[test]
fn an_earlier_member_error_wins_over_a_later_limit() {
    // The reading thread runs ahead and hits the expansion limit before the unpacking thread
    // reaches it; the unpacker's own error, earlier in the stream, is what a single-threaded
    // read reports, and so is it here.
    let mut tar = RawTar::image();
    tar.file(b"../escape", b"x");
    let err = within_a_minute(move || {
        let (bomb, limits) = zeros_bomb_after(tar);
        extract(&bomb[..], limits).unwrap_err()
    });
    assert!(matches!(err, AciError::UnsafePath { .. }), "{err}");
}

#[test]
fn a_bad_start_is_a_read_error() {
    let err = extract(FailsAfter(Cursor::new(Vec::new())), Limits::default()).unwrap_err();
    let AciError::Read(e) = &err else {
        panic!("{err}");
    };
    assert_eq!(e.kind(), io::ErrorKind::ConnectionReset);
}
