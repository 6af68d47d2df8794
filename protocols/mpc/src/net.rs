//! Channels between the two parties: typed, size-limited messages over any transport.
//!
//! [`Channel`] moves frames (byte vectors). [`ChannelExt`] adds typed messages (serde + bincode,
//! fixed-width little-endian integers) whose decoding is bounded by a caller-given maximum size, and
//! a raw fast path for ring matrices ([`ChannelExt::send_ring`]) that splits them into frames of
//! at most [`RING_CHUNK_WORDS`] words. Implementations:
//!
//! * [`mem_pair`] — two in-memory endpoints, for unit tests and in-process parties;
//! * [`StreamChannel`] — length-prefixed frames over any tokio byte stream (TCP, TLS, a QUIC
//!   stream); the `party` crate builds its transports on it;
//! * [`Metered`] — a wrapper counting bytes, frames and rounds (swanky's `TrackChannel`).
//!
//! Wire framing: a `u32` little-endian length, then the payload. [`Metered`] counts both, so its
//! byte counts equal what the framing layer hands to the transport.

use crate::error::{MpcError, Result};
use ndarray::{Array2, ArrayView2};
use serde::{de::DeserializeOwned, Serialize};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

/// Bytes of the length prefix in front of every frame.
pub const FRAME_HEADER_LEN: usize = 4;
/// Hard upper bound on any frame, whatever a caller allows (256 MiB).
pub const MAX_FRAME_LEN: usize = 1 << 28;
/// Ring matrices travel in frames of at most this many 64-bit words (4 MiB).
pub const RING_CHUNK_WORDS: usize = 1 << 19;

/// A bidirectional, ordered, reliable frame channel to the other party.
///
/// Protocol functions take `&mut impl Channel`; nothing in the crate holds a global channel.
pub trait Channel: Send {
    /// Sends one frame.
    fn send_frame(&mut self, frame: Vec<u8>) -> impl Future<Output = Result<()>> + Send;

    /// Receives one frame, refusing any longer than `max_len` bytes.
    fn recv_frame(&mut self, max_len: usize) -> impl Future<Output = Result<Vec<u8>>> + Send;

    /// Flushes buffered frames to the transport (a no-op where sends are not buffered).
    fn flush(&mut self) -> impl Future<Output = Result<()>> + Send {
        async { Ok(()) }
    }

    /// Sends `frame` and receives the peer's frame; both parties call it at the same point of a
    /// protocol (an `open`). Transports with bounded buffers override it to send and receive
    /// concurrently, so two large simultaneous sends cannot deadlock on flow control.
    fn exchange_frame(
        &mut self,
        frame: Vec<u8>,
        max_len: usize,
    ) -> impl Future<Output = Result<Vec<u8>>> + Send {
        async move {
            self.send_frame(frame).await?;
            self.flush().await?;
            self.recv_frame(max_len).await
        }
    }
}

impl<C: Channel + ?Sized> Channel for &mut C {
    fn send_frame(&mut self, frame: Vec<u8>) -> impl Future<Output = Result<()>> + Send {
        (**self).send_frame(frame)
    }
    fn recv_frame(&mut self, max_len: usize) -> impl Future<Output = Result<Vec<u8>>> + Send {
        (**self).recv_frame(max_len)
    }
    fn flush(&mut self) -> impl Future<Output = Result<()>> + Send {
        (**self).flush()
    }
    fn exchange_frame(
        &mut self,
        frame: Vec<u8>,
        max_len: usize,
    ) -> impl Future<Output = Result<Vec<u8>>> + Send {
        (**self).exchange_frame(frame, max_len)
    }
}

fn bincode_opts() -> impl bincode::Options + Copy {
    use bincode::Options;
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .with_little_endian()
        .reject_trailing_bytes()
}

/// Encodes a message with the channel's serialization (bincode, fixed-width little endian).
pub fn encode_message<T: Serialize + ?Sized>(msg: &T) -> Result<Vec<u8>> {
    use bincode::Options;
    bincode_opts()
        .serialize(msg)
        .map_err(|e| MpcError::Malformed {
            reason: format!("cannot serialize: {e}"),
        })
}

/// Decodes a message, refusing inputs above `max_len` bytes, allocations above it, and trailing bytes.
pub fn decode_message<T: DeserializeOwned>(bytes: &[u8], max_len: usize) -> Result<T> {
    use bincode::Options;
    if bytes.len() > max_len {
        return Err(MpcError::FrameTooLarge {
            len: bytes.len(),
            max: max_len,
        });
    }
    bincode_opts()
        .with_limit(max_len as u64)
        .deserialize(bytes)
        .map_err(|e| MpcError::Malformed {
            reason: e.to_string(),
        })
}

/// Typed messages and ring matrices on top of any [`Channel`].
pub trait ChannelExt: Channel {
    /// Sends a typed message as one frame.
    fn send<T: Serialize + ?Sized>(&mut self, msg: &T) -> impl Future<Output = Result<()>> + Send {
        let bytes = encode_message(msg);
        async move { self.send_frame(bytes?).await }
    }

    /// Receives a typed message of at most `max_len` encoded bytes.
    fn recv<T: DeserializeOwned>(
        &mut self,
        max_len: usize,
    ) -> impl Future<Output = Result<T>> + Send {
        async move {
            let frame = self.recv_frame(max_len).await?;
            decode_message(&frame, max_len)
        }
    }

    /// Sends a ring matrix as raw little-endian words (the receiver knows the shape).
    fn send_ring(&mut self, m: &ArrayView2<'_, u64>) -> impl Future<Output = Result<()>> + Send {
        let words: Vec<u64> = m.iter().copied().collect();
        async move {
            for chunk in words.chunks(RING_CHUNK_WORDS) {
                self.send_frame(words_to_bytes(chunk)).await?;
            }
            Ok(())
        }
    }

    /// Sends this party's ring matrix and receives the peer's matrix of the same shape, chunk by
    /// chunk through [`Channel::exchange_frame`] (one flight per chunk).
    fn exchange_ring(
        &mut self,
        m: &ArrayView2<'_, u64>,
    ) -> impl Future<Output = Result<Array2<u64>>> + Send {
        let words: Vec<u64> = m.iter().copied().collect();
        let dim = m.dim();
        async move {
            let mut got = Vec::with_capacity(words.len());
            for chunk in words.chunks(RING_CHUNK_WORDS) {
                let frame = self
                    .exchange_frame(words_to_bytes(chunk), chunk.len() * 8)
                    .await?;
                if frame.len() != chunk.len() * 8 {
                    return Err(MpcError::Malformed {
                        reason: format!(
                            "ring frame of {} bytes, expected {}",
                            frame.len(),
                            chunk.len() * 8
                        ),
                    });
                }
                got.extend(bytes_to_words(&frame));
            }
            Ok(Array2::from_shape_vec(dim, got).expect("shape"))
        }
    }

    /// Receives a `rows × cols` ring matrix sent with [`ChannelExt::send_ring`].
    fn recv_ring(
        &mut self,
        rows: usize,
        cols: usize,
    ) -> impl Future<Output = Result<Array2<u64>>> + Send {
        async move {
            let total = rows * cols;
            let mut words = Vec::with_capacity(total);
            while words.len() < total {
                let want = (total - words.len()).min(RING_CHUNK_WORDS);
                let frame = self.recv_frame(want * 8).await?;
                if frame.len() != want * 8 {
                    return Err(MpcError::Malformed {
                        reason: format!(
                            "ring frame of {} bytes, expected {} ({} of {} words received)",
                            frame.len(),
                            want * 8,
                            words.len(),
                            total
                        ),
                    });
                }
                words.extend(bytes_to_words(&frame));
            }
            Ok(Array2::from_shape_vec((rows, cols), words).expect("shape"))
        }
    }
}

impl<C: Channel + ?Sized> ChannelExt for C {}

fn words_to_bytes(words: &[u64]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(words.len() * 8);
    for w in words {
        bytes.extend_from_slice(&w.to_le_bytes());
    }
    bytes
}

fn bytes_to_words(bytes: &[u8]) -> impl Iterator<Item = u64> + '_ {
    bytes
        .chunks_exact(8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
}

/// One end of an in-memory channel; see [`mem_pair`].
#[derive(Debug)]
pub struct MemChannel {
    tx: mpsc::UnboundedSender<Vec<u8>>,
    rx: mpsc::UnboundedReceiver<Vec<u8>>,
}

/// Two connected in-memory endpoints (P0's, P1's).
pub fn mem_pair() -> (MemChannel, MemChannel) {
    let (t0, r0) = mpsc::unbounded_channel();
    let (t1, r1) = mpsc::unbounded_channel();
    (MemChannel { tx: t0, rx: r1 }, MemChannel { tx: t1, rx: r0 })
}

impl Channel for MemChannel {
    fn send_frame(&mut self, frame: Vec<u8>) -> impl Future<Output = Result<()>> + Send {
        let r = self.tx.send(frame).map_err(|_| MpcError::ChannelClosed {
            reason: "in-memory peer dropped".into(),
        });
        async move { r }
    }

    async fn recv_frame(&mut self, max_len: usize) -> Result<Vec<u8>> {
        let f = self
            .rx
            .recv()
            .await
            .ok_or_else(|| MpcError::ChannelClosed {
                reason: "in-memory peer dropped".into(),
            })?;
        if f.len() > max_len.min(MAX_FRAME_LEN) {
            return Err(MpcError::FrameTooLarge {
                len: f.len(),
                max: max_len.min(MAX_FRAME_LEN),
            });
        }
        Ok(f)
    }
}

/// Length-prefixed frames over a byte stream (a reader half and a writer half).
///
/// A receive reads the 4-byte length first and refuses a frame above the caller's limit (or
/// [`MAX_FRAME_LEN`]) before allocating anything.
#[derive(Debug)]
pub struct StreamChannel<R, W> {
    reader: R,
    writer: W,
}

impl<R, W> StreamChannel<R, W> {
    /// Wraps the two halves of a stream.
    pub fn new(reader: R, writer: W) -> Self {
        Self { reader, writer }
    }

    /// The two halves.
    pub fn into_inner(self) -> (R, W) {
        (self.reader, self.writer)
    }
}

fn io_err(e: std::io::Error) -> MpcError {
    MpcError::ChannelClosed {
        reason: e.to_string(),
    }
}

impl<R, W> Channel for StreamChannel<R, W>
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send,
{
    async fn send_frame(&mut self, frame: Vec<u8>) -> Result<()> {
        write_frame(&mut self.writer, &frame).await
    }

    fn recv_frame(&mut self, max_len: usize) -> impl Future<Output = Result<Vec<u8>>> + Send {
        read_frame(&mut self.reader, max_len)
    }

    async fn flush(&mut self) -> Result<()> {
        self.writer.flush().await.map_err(io_err)
    }

    async fn exchange_frame(&mut self, frame: Vec<u8>, max_len: usize) -> Result<Vec<u8>> {
        let (reader, writer) = (&mut self.reader, &mut self.writer);
        let send = async move {
            write_frame(writer, &frame).await?;
            writer.flush().await.map_err(io_err)
        };
        let recv = read_frame(reader, max_len);
        let (s, r) = tokio::join!(send, recv);
        s?;
        r
    }
}

/// Writes one frame — its length, then the payload — as one vectored write where the writer
/// supports it, so a large frame leaves in one system call or TLS record run with its header
/// instead of after a separate 4-byte write (a packet or record of its own).
async fn write_frame<W: AsyncWrite + Unpin>(writer: &mut W, frame: &[u8]) -> Result<()> {
    if frame.len() > MAX_FRAME_LEN {
        return Err(MpcError::FrameTooLarge {
            len: frame.len(),
            max: MAX_FRAME_LEN,
        });
    }
    let header = (frame.len() as u32).to_le_bytes();
    let mut done = 0;
    let total = FRAME_HEADER_LEN + frame.len();
    while done < total {
        let n = if done < FRAME_HEADER_LEN {
            let parts = [
                std::io::IoSlice::new(&header[done..]),
                std::io::IoSlice::new(frame),
            ];
            writer.write_vectored(&parts).await
        } else {
            writer.write(&frame[done - FRAME_HEADER_LEN..]).await
        }
        .map_err(io_err)?;
        if n == 0 {
            return Err(io_err(std::io::ErrorKind::WriteZero.into()));
        }
        done += n;
    }
    Ok(())
}

/// Reads one frame: the length, refused above `max_len` (and [`MAX_FRAME_LEN`]) before anything
/// is allocated, then the payload straight into a buffer of exactly that size (not zeroed first).
async fn read_frame<R: AsyncRead + Unpin>(reader: &mut R, max_len: usize) -> Result<Vec<u8>> {
    let mut len = [0u8; FRAME_HEADER_LEN];
    reader.read_exact(&mut len).await.map_err(io_err)?;
    let len = u32::from_le_bytes(len) as usize;
    let max = max_len.min(MAX_FRAME_LEN);
    if len > max {
        return Err(MpcError::FrameTooLarge { len, max });
    }
    let mut buf = Vec::with_capacity(len);
    // `read_buf` fills the spare capacity only, so the buffer never grows past `len`.
    while buf.len() < len {
        if reader.read_buf(&mut buf).await.map_err(io_err)? == 0 {
            return Err(io_err(std::io::ErrorKind::UnexpectedEof.into()));
        }
    }
    Ok(buf)
}

/// Communication counters of one party.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct CommStats {
    /// Bytes handed to the transport (frame headers included).
    pub bytes_sent: u64,
    /// Bytes received from the transport (frame headers included).
    pub bytes_received: u64,
    /// Frames sent.
    pub frames_sent: u64,
    /// Frames received.
    pub frames_received: u64,
    /// Communication rounds: the number of times this party started sending after it had last
    /// received (or at the very start) — one flight of messages.
    pub rounds: u64,
}

impl CommStats {
    /// The counts accumulated since `earlier`.
    pub fn since(&self, earlier: &CommStats) -> CommStats {
        CommStats {
            bytes_sent: self.bytes_sent - earlier.bytes_sent,
            bytes_received: self.bytes_received - earlier.bytes_received,
            frames_sent: self.frames_sent - earlier.frames_sent,
            frames_received: self.frames_received - earlier.frames_received,
            rounds: self.rounds - earlier.rounds,
        }
    }
}

/// Shared counters; clone the handle to read them while the channel is busy elsewhere.
#[derive(Debug, Default)]
pub struct Meter {
    bytes_sent: AtomicU64,
    bytes_received: AtomicU64,
    frames_sent: AtomicU64,
    frames_received: AtomicU64,
    rounds: AtomicU64,
    last_was_send: std::sync::atomic::AtomicBool,
}

impl Meter {
    /// A snapshot of the counters.
    pub fn stats(&self) -> CommStats {
        CommStats {
            bytes_sent: self.bytes_sent.load(Ordering::Relaxed),
            bytes_received: self.bytes_received.load(Ordering::Relaxed),
            frames_sent: self.frames_sent.load(Ordering::Relaxed),
            frames_received: self.frames_received.load(Ordering::Relaxed),
            rounds: self.rounds.load(Ordering::Relaxed),
        }
    }
}

/// A channel wrapper that counts bytes, frames and rounds.
#[derive(Debug)]
pub struct Metered<C> {
    inner: C,
    meter: Arc<Meter>,
}

impl<C> Metered<C> {
    /// Wraps `inner` with fresh counters.
    pub fn new(inner: C) -> Self {
        Self {
            inner,
            meter: Arc::new(Meter::default()),
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> CommStats {
        self.meter.stats()
    }

    /// A handle to the live counters.
    pub fn meter(&self) -> Arc<Meter> {
        self.meter.clone()
    }

    /// The wrapped channel.
    pub fn into_inner(self) -> C {
        self.inner
    }
}

impl<C: Channel> Channel for Metered<C> {
    fn send_frame(&mut self, frame: Vec<u8>) -> impl Future<Output = Result<()>> + Send {
        let n = (frame.len() + FRAME_HEADER_LEN) as u64;
        async move {
            self.inner.send_frame(frame).await?;
            let m = &self.meter;
            m.bytes_sent.fetch_add(n, Ordering::Relaxed);
            m.frames_sent.fetch_add(1, Ordering::Relaxed);
            if !m.last_was_send.swap(true, Ordering::Relaxed) {
                m.rounds.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        }
    }

    async fn recv_frame(&mut self, max_len: usize) -> Result<Vec<u8>> {
        let f = self.inner.recv_frame(max_len).await?;
        let m = &self.meter;
        m.bytes_received
            .fetch_add((f.len() + FRAME_HEADER_LEN) as u64, Ordering::Relaxed);
        m.frames_received.fetch_add(1, Ordering::Relaxed);
        m.last_was_send.store(false, Ordering::Relaxed);
        Ok(f)
    }

    fn flush(&mut self) -> impl Future<Output = Result<()>> + Send {
        self.inner.flush()
    }

    fn exchange_frame(
        &mut self,
        frame: Vec<u8>,
        max_len: usize,
    ) -> impl Future<Output = Result<Vec<u8>>> + Send {
        let n = (frame.len() + FRAME_HEADER_LEN) as u64;
        async move {
            let f = self.inner.exchange_frame(frame, max_len).await?;
            let m = &self.meter;
            m.bytes_sent.fetch_add(n, Ordering::Relaxed);
            m.frames_sent.fetch_add(1, Ordering::Relaxed);
            m.rounds.fetch_add(1, Ordering::Relaxed);
            m.bytes_received
                .fetch_add((f.len() + FRAME_HEADER_LEN) as u64, Ordering::Relaxed);
            m.frames_received.fetch_add(1, Ordering::Relaxed);
            m.last_was_send.store(false, Ordering::Relaxed);
            Ok(f)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Msg {
        a: u32,
        v: Vec<u64>,
    }

    #[tokio::test]
    async fn typed_messages_round_trip_in_memory() {
        let (mut a, mut b) = mem_pair();
        let m = Msg {
            a: 7,
            v: vec![1, 2, 3],
        };
        a.send(&m).await.unwrap();
        let got: Msg = b.recv(1024).await.unwrap();
        assert_eq!(got, m);
    }

    #[tokio::test]
    async fn oversized_frames_are_rejected() {
        let (mut a, mut b) = mem_pair();
        a.send(&vec![0u64; 100]).await.unwrap();
        let r: Result<Vec<u64>> = b.recv(64).await;
        assert!(matches!(
            r,
            Err(MpcError::FrameTooLarge { len: 808, max: 64 })
        ));

        // Over a byte stream the length prefix is checked before any allocation.
        let (x, y) = tokio::io::duplex(1 << 16);
        let (xr, xw) = tokio::io::split(x);
        let (yr, yw) = tokio::io::split(y);
        let mut cx = StreamChannel::new(xr, xw);
        let mut cy = StreamChannel::new(yr, yw);
        cx.send_frame(vec![1u8; 1000]).await.unwrap();
        assert!(matches!(
            cy.recv_frame(999).await,
            Err(MpcError::FrameTooLarge {
                len: 1000,
                max: 999
            })
        ));
    }

    #[tokio::test]
    async fn a_huge_announced_length_is_refused_without_allocating() {
        let (x, y) = tokio::io::duplex(1 << 10);
        let (_xr, mut xw) = tokio::io::split(x);
        let (yr, yw) = tokio::io::split(y);
        let mut cy = StreamChannel::new(yr, yw);
        xw.write_all(&u32::MAX.to_le_bytes()).await.unwrap();
        assert!(matches!(
            cy.recv_frame(usize::MAX).await,
            Err(MpcError::FrameTooLarge {
                max: MAX_FRAME_LEN,
                ..
            })
        ));
    }

    #[tokio::test]
    async fn malformed_messages_are_errors_not_panics() {
        let (mut a, mut b) = mem_pair();
        // Truncated: a Vec length prefix announcing more than is there.
        let mut bytes = encode_message(&Msg {
            a: 1,
            v: vec![5; 4],
        })
        .unwrap();
        bytes.truncate(bytes.len() - 3);
        a.send_frame(bytes).await.unwrap();
        assert!(matches!(
            b.recv::<Msg>(1 << 20).await,
            Err(MpcError::Malformed { .. })
        ));
        // A length prefix claiming 2^60 elements must not allocate.
        let mut evil = 1u32.to_le_bytes().to_vec();
        evil.extend_from_slice(&(1u64 << 60).to_le_bytes());
        a.send_frame(evil).await.unwrap();
        assert!(matches!(
            b.recv::<Msg>(1 << 20).await,
            Err(MpcError::Malformed { .. })
        ));
        // Trailing garbage.
        let mut bytes = encode_message(&Msg { a: 1, v: vec![] }).unwrap();
        bytes.push(0);
        a.send_frame(bytes).await.unwrap();
        assert!(matches!(
            b.recv::<Msg>(1 << 20).await,
            Err(MpcError::Malformed { .. })
        ));
    }

    #[tokio::test]
    async fn ring_matrices_cross_in_chunks() {
        let (mut a, mut b) = mem_pair();
        let m = Array2::from_shape_fn((3, RING_CHUNK_WORDS / 2 + 5), |(i, j)| {
            (i * 1_000_003 + j) as u64
        });
        a.send_ring(&m.view()).await.unwrap();
        let got = b.recv_ring(3, RING_CHUNK_WORDS / 2 + 5).await.unwrap();
        assert_eq!(got, m);
        // A short frame is an error.
        a.send_frame(vec![0u8; 12]).await.unwrap();
        assert!(b.recv_ring(1, 2).await.is_err());
    }

    /// The metered byte count equals the bytes that actually crossed the byte stream.
    #[tokio::test]
    async fn metered_counts_equal_bytes_on_the_wire() {
        let (x, y) = tokio::io::duplex(1 << 20);
        let (xr, xw) = tokio::io::split(x);
        let mut ch = Metered::new(StreamChannel::new(xr, xw));
        let (mut yr, _yw) = tokio::io::split(y);
        let reader = tokio::spawn(async move {
            let mut all = Vec::new();
            yr.read_to_end(&mut all).await.unwrap();
            all.len() as u64
        });
        ch.send(&Msg {
            a: 3,
            v: vec![9; 1000],
        })
        .await
        .unwrap();
        ch.send_ring(&Array2::from_elem((10, 10), 5u64).view())
            .await
            .unwrap();
        ch.send(&()).await.unwrap();
        let stats = ch.stats();
        drop(ch);
        let on_wire = reader.await.unwrap();
        assert_eq!(stats.bytes_sent, on_wire);
        assert_eq!(stats.frames_sent, 3);
        assert_eq!(stats.rounds, 1);
    }

    #[tokio::test]
    async fn rounds_count_flights() {
        let (a, b) = mem_pair();
        let mut a = Metered::new(a);
        let mut b = Metered::new(b);
        for _ in 0..3 {
            a.send(&1u8).await.unwrap();
            a.send(&2u8).await.unwrap();
            let _: u8 = b.recv(8).await.unwrap();
            let _: u8 = b.recv(8).await.unwrap();
            b.send(&3u8).await.unwrap();
            let _: u8 = a.recv(8).await.unwrap();
        }
        assert_eq!(a.stats().rounds, 3);
        assert_eq!(b.stats().rounds, 3);
        assert_eq!(a.stats().bytes_sent, 6 * 5);
        assert_eq!(b.stats().bytes_received, 6 * 5);
    }

    /// Frames of 0 bytes, 1, around the writer's buffer size and far above it cross intact
    /// whether the writer takes vectored writes (TCP) or not (an in-memory pipe), with and
    /// without a buffered writer in between.
    #[tokio::test]
    async fn frames_of_boundary_sizes_round_trip() {
        use tokio::io::{BufReader, BufWriter};
        const CAP: usize = 1 << 12;
        let sizes = [
            0,
            1,
            3,
            CAP - 5,
            CAP - 4,
            CAP - 3,
            CAP,
            CAP + 1,
            3 * CAP + 7,
            1 << 20,
        ];
        let frames: Vec<Vec<u8>> = sizes
            .iter()
            .map(|&n| (0..n).map(|i| (i * 7 + n) as u8).collect())
            .collect();
        async fn run<R, W>(
            mut tx: StreamChannel<R, W>,
            mut rx: StreamChannel<R, W>,
            frames: &[Vec<u8>],
        ) where
            R: AsyncRead + Unpin + Send,
            W: AsyncWrite + Unpin + Send,
        {
            let send = async {
                for f in frames {
                    tx.send_frame(f.clone()).await.unwrap();
                }
                tx.flush().await.unwrap();
            };
            let recv = async {
                for f in frames {
                    assert_eq!(
                        &rx.recv_frame(f.len()).await.unwrap(),
                        f,
                        "{} bytes",
                        f.len()
                    );
                }
            };
            tokio::join!(send, recv);
        }
        // In-memory pipe (no vectored writes), bare and behind a small BufWriter.
        let (x, y) = tokio::io::duplex(1 << 14);
        let ((xr, xw), (yr, yw)) = (tokio::io::split(x), tokio::io::split(y));
        run(
            StreamChannel::new(xr, xw),
            StreamChannel::new(yr, yw),
            &frames,
        )
        .await;
        let (x, y) = tokio::io::duplex(1 << 14);
        let ((xr, xw), (yr, yw)) = (tokio::io::split(x), tokio::io::split(y));
        let buffered = |r, w| {
            StreamChannel::new(
                BufReader::with_capacity(CAP, r),
                BufWriter::with_capacity(CAP, w),
            )
        };
        run(buffered(xr, xw), buffered(yr, yw), &frames).await;
        // TCP on loopback (vectored writes) behind the same buffers.
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let (a, b) = tokio::join!(tokio::net::TcpStream::connect(addr), l.accept());
        let (a, (b, _)) = (a.unwrap(), b.unwrap());
        assert!(tokio::io::AsyncWrite::is_write_vectored(&a));
        let ((ar, aw), (br, bw)) = (a.into_split(), b.into_split());
        let wrap = |r, w| {
            StreamChannel::new(
                BufReader::with_capacity(CAP, r),
                BufWriter::with_capacity(CAP, w),
            )
        };
        run(wrap(ar, aw), wrap(br, bw), &frames).await;
    }

    /// A stream that ends inside a frame's payload is a closed channel, not a short frame.
    #[tokio::test]
    async fn a_stream_ending_mid_frame_is_an_error() {
        let (x, y) = tokio::io::duplex(1 << 10);
        let (_xr, mut xw) = tokio::io::split(x);
        let (yr, yw) = tokio::io::split(y);
        let mut cy = StreamChannel::new(yr, yw);
        xw.write_all(&10u32.to_le_bytes()).await.unwrap();
        xw.write_all(&[1, 2, 3]).await.unwrap();
        drop(xw);
        drop(_xr);
        assert!(matches!(
            cy.recv_frame(100).await,
            Err(MpcError::ChannelClosed { .. })
        ));
    }
}
