//! What reading an image may cost, whoever made it.
//!
//! A few KiB of gzip, xz or zstd can hold gigabytes of zeros, and a GNU sparse member can claim
//! any size in a 512-byte header. Two limits bound the damage: the *rendered size* (the sum of
//! the apparent sizes of the regular files, checked from the headers before a member is
//! written) and the *expansion ratio* (uncompressed tar bytes per compressed input byte,
//! checked as the stream is decompressed, once it passed a floor).
use std::cell::Cell;
use std::io::{self, BufReader, Cursor, Read};
use std::rc::Rc;

use super::{Compression, BUF_SIZE};

/// Default [`Limits::max_rendered_size`]: 16 GiB. Real images render to well under that (distro
/// images to 0.1-2 GiB, the largest CUDA and ML images to about 10 GiB) while a hostile one
/// cannot fill a disk: the store keeps one rendered tree per image, and copy mode and `export`
/// write every file out at its apparent size.
pub const DEFAULT_MAX_RENDERED_SIZE: u64 = 16 << 30;

/// Default [`Limits::max_expansion_ratio`]: 256. Tar streams of real files compress 2-10:1 (a
/// 2 GiB distro image is 500 MiB-1 GiB compressed); only long runs of one byte go past 100:1.
/// gzip cannot exceed about 1030:1, while xz and zstd reach millions to one on zeros.
pub const DEFAULT_MAX_EXPANSION_RATIO: u64 = 256;

/// Default [`Limits::expansion_floor`]: 64 MiB. Below it the ratio is never checked, so small
/// images (say, a few MiB of zero-filled placeholder files) are never refused for compressing
/// well; 64 MiB is also not worth stopping early.
pub const DEFAULT_EXPANSION_FLOOR: u64 = 64 << 20;

/// Limits on reading one image (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most bytes the image's regular files may add up to: apparent sizes, so a sparse file
    /// counts in full, and a hard link counts like a copy of its target (copy mode and export
    /// write them out that way).
    pub max_rendered_size: u64,
    /// Most uncompressed tar bytes per compressed input byte.
    pub max_expansion_ratio: u64,
    /// Uncompressed bytes read before [`Limits::max_expansion_ratio`] applies.
    pub expansion_floor: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_rendered_size: DEFAULT_MAX_RENDERED_SIZE,
            max_expansion_ratio: DEFAULT_MAX_EXPANSION_RATIO,
            expansion_floor: DEFAULT_EXPANSION_FLOOR,
        }
    }
}

/// An image went past one of its [`Limits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LimitExceeded {
    #[error("image exceeds the size limit: its files add up to more than {limit} bytes ({seen} bytes so far); raise the limit only for an image you trust")]
    RenderedSize { limit: u64, seen: u64 },
    #[error("image exceeds the expansion limit: {uncompressed} bytes decompressed from {compressed} compressed bytes is more than {limit} times the input; raise the limit only for an image you trust")]
    Expansion {
        limit: u64,
        compressed: u64,
        uncompressed: u64,
    },
}

impl LimitExceeded {
    /// The limit behind an I/O error returned by a [`LimitedDecompressor`], if that is its cause.
    pub fn from_io(e: &io::Error) -> Option<LimitExceeded> {
        e.get_ref()?.downcast_ref::<LimitExceeded>().copied()
    }
}

/// Counts the bytes read from the (compressed) input.
struct Counting<R> {
    inner: R,
    count: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

/// A decompressed image stream that fails with a [`LimitExceeded`] I/O error (see
/// [`LimitExceeded::from_io`]) once it expands more than [`Limits::max_expansion_ratio`].
pub struct LimitedDecompressor<'a> {
    inner: Box<dyn Read + 'a>,
    compression: Compression,
    compressed: Rc<Cell<u64>>,
    uncompressed: u64,
    limits: Limits,
    exceeded: Option<LimitExceeded>,
}

impl<'a> LimitedDecompressor<'a> {
    /// Detects the compression of `input` by its magic number and decompresses it (multi-member
    /// gzip, bzip2 and xz streams are read to the end, as Go does).
    pub fn new<R: Read + 'a>(input: R, limits: Limits) -> io::Result<LimitedDecompressor<'a>> {
        let compressed = Rc::new(Cell::new(0));
        let mut input = Counting {
            inner: input,
            count: compressed.clone(),
        };
        let mut head = [0u8; 6];
        let mut n = 0;
        while n < head.len() {
            match input.read(&mut head[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let compression = Compression::detect(&head[..n]);
        let input =
            BufReader::with_capacity(BUF_SIZE, Cursor::new(head[..n].to_vec()).chain(input));
        let inner: Box<dyn Read + 'a> = match compression {
            Compression::None => Box::new(input),
            Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(input)),
            Compression::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(input)),
            Compression::Xz => Box::new(xz2::bufread::XzDecoder::new_multi_decoder(input)),
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(input)?),
        };
        Ok(LimitedDecompressor {
            inner,
            compression,
            compressed,
            uncompressed: 0,
            limits,
            exceeded: None,
        })
    }

    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// The limit this stream went past, if it did.
    pub fn exceeded(&self) -> Option<LimitExceeded> {
        self.exceeded
    }
}

impl Read for LimitedDecompressor<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(e) = self.exceeded {
            return Err(io::Error::other(e));
        }
        let n = self.inner.read(buf)?;
        self.uncompressed += n as u64;
        // The compressed count runs ahead of what was decompressed (the input is read in
        // buffer-sized chunks), which only errs towards accepting.
        let compressed = self.compressed.get();
        let Limits {
            max_expansion_ratio: limit,
            expansion_floor: floor,
            ..
        } = self.limits;
        if self.uncompressed > floor && self.uncompressed / limit.max(1) > compressed {
            let e = LimitExceeded::Expansion {
                limit,
                compressed,
                uncompressed: self.uncompressed,
            };
            self.exceeded = Some(e);
            return Err(io::Error::other(e));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn expansion_is_checked_past_the_floor_only() {
        let zeros = vec![0u8; 4 << 20];
        let compressed = gzip(&zeros);
        let limits = Limits {
            max_expansion_ratio: 16,
            expansion_floor: 1 << 20,
            ..Limits::default()
        };
        let mut r = LimitedDecompressor::new(&compressed[..], limits).unwrap();
        assert_eq!(r.compression(), Compression::Gzip);
        let e = io::copy(&mut r, &mut io::sink()).unwrap_err();
        let exceeded = LimitExceeded::from_io(&e).expect("a limit error");
        assert_eq!(r.exceeded(), Some(exceeded));
        let LimitExceeded::Expansion {
            limit,
            compressed: c,
            uncompressed,
        } = exceeded
        else {
            panic!("{exceeded}");
        };
        assert_eq!(limit, 16);
        assert!(
            uncompressed > 1 << 20 && uncompressed / 16 > c,
            "{exceeded}"
        );
        assert!(exceeded
            .to_string()
            .starts_with("image exceeds the expansion limit: "));
        // The same stream under the floor, or with a larger ratio, is fine.
        let roomy = Limits {
            expansion_floor: 8 << 20,
            ..limits
        };
        let mut r = LimitedDecompressor::new(&compressed[..], roomy).unwrap();
        assert_eq!(io::copy(&mut r, &mut io::sink()).unwrap(), 4 << 20);
        let mut r = LimitedDecompressor::new(&compressed[..], Limits::default()).unwrap();
        assert_eq!(io::copy(&mut r, &mut io::sink()).unwrap(), 4 << 20);
    }

    #[test]
    fn uncompressed_input_never_expands() {
        let data = vec![0u8; 3 << 20];
        let limits = Limits {
            max_expansion_ratio: 1,
            expansion_floor: 0,
            ..Limits::default()
        };
        let mut r = LimitedDecompressor::new(&data[..], limits).unwrap();
        assert_eq!(r.compression(), Compression::None);
        assert_eq!(io::copy(&mut r, &mut io::sink()).unwrap(), 3 << 20);
    }
}
