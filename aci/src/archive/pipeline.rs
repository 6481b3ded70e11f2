//! Reading an image on three threads, so that decompression, hashing (the image ID) and tar
//! parsing with extraction overlap on a multi-core machine while the input is still read once:
//!
//! ```text
//!   caller's thread            "aci-hash"               "aci-unpack"
//!   input ─► decompress ─Msg─► SHA-512 of the tar ─Msg─► tar parsing, validation, extraction
//!                ▲                                                  │
//!                └──────────────── emptied buffers ─────────────────┘
//! ```
//!
//! The input stays on the caller's thread, so it need not be `Send` (the store's blob copy,
//! a decompressing blob reader) and its errors happen where they always did. [`POOL`] buffers of
//! [`CHUNK`] bytes circulate: the decompressor waits for an emptied one once all are in flight,
//! which bounds memory and how far it runs ahead whatever the image's size.
//!
//! Shutdown: each stage stops when the next one has gone (its send fails) or the previous one
//! has (its receive fails), so a failure anywhere ends the others within one buffer: the unpacker
//! failing drops its end of both channels, the hasher then fails to send and returns, and the
//! decompressor fails to send or to get a buffer back. A read or decompression error travels
//! down the same channel as the data, at its place in the stream, and the unpacker's reads fail
//! there just as a single-threaded reader's would. Scoped threads are always joined; a panic in
//! one is re-raised in the caller.
use std::io::{self, Read};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError};
use std::thread;

use sha2::{Digest, Sha512};

use super::limits::{LimitExceeded, LimitedDecompressor, Limits};
use super::{Compression, BUF_SIZE};
use crate::AciError;

/// Bytes of decompressed tar per buffer.
pub(crate) const CHUNK: usize = BUF_SIZE;
/// Buffers in circulation (POOL × CHUNK = 4 MiB): enough that neither side waits on the other
/// for a single slow member, small enough to keep memory flat.
pub(crate) const POOL: usize = 16;

/// What one stage hands to the next, in stream order.
enum Msg<E> {
    /// A buffer whose first `len` bytes are the next part of the stream.
    Data(Vec<u8>, usize),
    /// The stream failed at this point; nothing follows.
    Failed(io::Error),
    /// The stream ended; nothing follows.
    End(E),
}

/// What is known once the whole decompressed stream went through the hasher.
pub(crate) struct StreamEnd {
    /// SHA-512 of the decompressed stream.
    pub digest: Vec<u8>,
    /// Its length.
    pub size: u64,
    pub compression: Compression,
}

/// Decompresses `input` on this thread and hands the stream to `unpack`, which runs on another
/// thread while a third hashes the stream. Returns what `unpack` returned. Errors reading or
/// decompressing `input` reach `unpack` as errors from [`Stream`]'s reads.
pub(crate) fn read_piped<R, T, F>(input: R, limits: Limits, unpack: F) -> Result<T, AciError>
where
    R: Read,
    T: Send,
    F: FnOnce(&mut Stream) -> Result<T, AciError> + Send,
{
    thread::scope(|s| {
        // Created inside the scope: an early return drops every end, so that a thread already
        // started sees a closed channel and returns instead of keeping the scope waiting.
        let (raw_tx, raw_rx) = mpsc::sync_channel(POOL + 1);
        let (hashed_tx, hashed_rx) = mpsc::sync_channel(POOL + 1);
        let (free_tx, free_rx) = mpsc::sync_channel(POOL);
        let hasher = thread::Builder::new()
            .name("aci-hash".into())
            .spawn_scoped(s, move || hash(raw_rx, hashed_tx))
            .map_err(|e| AciError::Thread {
                what: "hashing",
                source: e,
            })?;
        let unpacker = thread::Builder::new()
            .name("aci-unpack".into())
            .spawn_scoped(s, move || unpack(&mut Stream::new(hashed_rx, free_tx)))
            .map_err(|e| AciError::Thread {
                what: "unpacking",
                source: e,
            })?;
        decompress(input, limits, raw_tx, free_rx);
        let unpacked = unpacker
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        hasher
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        unpacked
    })
}

/// The caller's stage: reads and decompresses `input` into buffers until it ends, fails, or the
/// next stage has gone. Buffers are allocated up to [`POOL`], then only reused.
fn decompress<R: Read>(
    input: R,
    limits: Limits,
    out: SyncSender<Msg<Compression>>,
    free: Receiver<Vec<u8>>,
) {
    let mut stream = match LimitedDecompressor::new(input, limits) {
        Ok(stream) => stream,
        Err(e) => {
            // A failed send means the unpacker has already stopped: nobody is left to tell.
            out.send(Msg::Failed(e)).ok();
            return;
        }
    };
    let mut allocated = 0;
    loop {
        let mut buf = match free.try_recv() {
            Ok(buf) => buf,
            Err(TryRecvError::Empty) if allocated < POOL => {
                allocated += 1;
                vec![0; CHUNK]
            }
            Err(TryRecvError::Empty) => match free.recv() {
                Ok(buf) => buf,
                Err(_) => return,
            },
            Err(TryRecvError::Disconnected) => return,
        };
        let (len, end) = fill(&mut stream, &mut buf);
        if len > 0 && out.send(Msg::Data(buf, len)).is_err() {
            return;
        }
        match end {
            None => {}
            Some(Ok(())) => {
                out.send(Msg::End(stream.compression())).ok();
                return;
            }
            Some(Err(e)) => {
                out.send(Msg::Failed(e)).ok();
                return;
            }
        }
    }
}

/// Reads into `buf` until it is full, the stream ends (`Some(Ok)`) or fails (`Some(Err)`), and
/// returns how many bytes it holds.
fn fill(stream: &mut impl Read, buf: &mut [u8]) -> (usize, Option<io::Result<()>>) {
    let mut len = 0;
    while len < buf.len() {
        match stream.read(&mut buf[len..]) {
            Ok(0) => return (len, Some(Ok(()))),
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (len, Some(Err(e))),
        }
    }
    (len, None)
}

/// The hashing stage: passes every message on, hashing the data on the way.
fn hash(input: Receiver<Msg<Compression>>, out: SyncSender<Msg<StreamEnd>>) {
    let mut hasher = Sha512::new();
    let mut size = 0u64;
    for msg in input {
        let msg = match msg {
            Msg::Data(buf, len) => {
                hasher.update(&buf[..len]);
                size += len as u64;
                Msg::Data(buf, len)
            }
            Msg::Failed(e) => Msg::Failed(e),
            Msg::End(compression) => Msg::End(StreamEnd {
                digest: hasher.finalize_reset().to_vec(),
                size,
                compression,
            }),
        };
        if out.send(msg).is_err() {
            return;
        }
    }
}

enum State {
    Open,
    Ended(StreamEnd),
    /// The kind of the error already returned, and the limit behind it if that was its cause.
    Failed(io::ErrorKind, Option<LimitExceeded>),
}

/// The decompressed stream as the unpacking stage reads it.
pub(crate) struct Stream {
    input: Receiver<Msg<StreamEnd>>,
    free: SyncSender<Vec<u8>>,
    buf: Vec<u8>,
    len: usize,
    pos: usize,
    state: State,
}

impl Stream {
    fn new(input: Receiver<Msg<StreamEnd>>, free: SyncSender<Vec<u8>>) -> Stream {
        Stream {
            input,
            free,
            buf: Vec::new(),
            len: 0,
            pos: 0,
            state: State::Open,
        }
    }

    /// The limit that stopped the stream, once a read has returned that error.
    pub(crate) fn limit(&self) -> Option<LimitExceeded> {
        match self.state {
            State::Failed(_, limit) => limit,
            _ => None,
        }
    }

    /// Digest, size and compression, once a read has returned the end of the stream.
    pub(crate) fn end(&self) -> Option<&StreamEnd> {
        match &self.state {
            State::Ended(end) => Some(end),
            _ => None,
        }
    }

    /// Takes the next message, after handing the emptied buffer back.
    fn next(&mut self) -> io::Result<()> {
        let emptied = std::mem::take(&mut self.buf);
        if !emptied.is_empty() {
            // Fails only once the decompressor has stopped, which needs no more buffers.
            self.free.send(emptied).ok();
        }
        match self.input.recv() {
            Ok(Msg::Data(buf, len)) => {
                (self.buf, self.len, self.pos) = (buf, len, 0);
                Ok(())
            }
            Ok(Msg::End(end)) => {
                self.state = State::Ended(end);
                Ok(())
            }
            Ok(Msg::Failed(e)) => {
                self.state = State::Failed(e.kind(), LimitExceeded::from_io(&e));
                Err(e)
            }
            // Only if the hasher panicked, which the caller re-raises once this stage returns.
            Err(_) => {
                self.state = State::Failed(io::ErrorKind::BrokenPipe, None);
                Err(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "the hashing thread stopped",
                ))
            }
        }
    }
}

impl Read for Stream {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.pos < self.len {
                let n = out.len().min(self.len - self.pos);
                out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            match self.state {
                State::Open if out.is_empty() => return Ok(0),
                State::Open => self.next()?,
                State::Ended(_) => return Ok(0),
                // Errors are sticky, as the decompressor's are.
                State::Failed(_, Some(limit)) => return Err(io::Error::other(limit)),
                State::Failed(kind, None) => {
                    return Err(io::Error::new(kind, "the image stream failed earlier"))
                }
            }
        }
    }
}
