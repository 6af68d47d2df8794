//! [`PeerChannel`]: the [`mpc::net::Channel`] every transport hands to protocol code.
//!
//! Frames use mpc's [`StreamChannel`] framing (a `u32` length, then the payload) over the byte
//! stream of the transport: a QUIC bidirectional stream, one TLS 1.3 connection, or one plain TCP
//! connection. Every frame is written through (flushed) when `send_frame` returns, so a peer never
//! waits on bytes parked in a buffer while this side computes; the 64 KiB write buffer makes the
//! header and a small payload leave in one packet / TLS record, and a large payload leaves with
//! its header in one vectored write. Reads are buffered too, so a
//! small frame costs one system call. `exchange_frame` sends and receives concurrently (inherited
//! from [`StreamChannel`]), so two parties sending large matrices at the same time cannot block
//! each other on flow control.
//!
//! A frame above the receiver's limit is refused ([`MpcError::FrameTooLarge`]) before anything is
//! allocated. The channel then closes itself (its byte stream is no longer in sync) — later calls
//! return [`MpcError::ChannelClosed`] — while the rest of the link keeps working.

use mpc::net::{Channel, StreamChannel};
use mpc::MpcError;
use tokio::io::{BufReader, BufWriter, ReadHalf, WriteHalf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

/// Buffer size of the reader and writer around each byte stream.
pub(crate) const IO_BUFFER: usize = 64 << 10;

type Tls = tokio_rustls::TlsStream<super::tcp::TlsIo>;
type Framed<R, W> = StreamChannel<BufReader<R>, BufWriter<W>>;

enum Inner {
    Quic(Framed<quinn::RecvStream, quinn::SendStream>),
    Tls(Framed<ReadHalf<Tls>, WriteHalf<Tls>>),
    Tcp(Framed<OwnedReadHalf, OwnedWriteHalf>),
}

macro_rules! with_inner {
    ($inner:expr, $c:ident => $body:expr) => {
        match $inner {
            Inner::Quic($c) => $body,
            Inner::Tls($c) => $body,
            Inner::Tcp($c) => $body,
        }
    };
}

/// One ordered, reliable frame channel to the peer, over any [`super::TransportKind`].
pub struct PeerChannel {
    inner: Option<Inner>,
    /// Why the channel closed itself (after refusing an oversized frame).
    closed: Option<String>,
    kind: super::TransportKind,
    index: u32,
}

impl std::fmt::Debug for PeerChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerChannel")
            .field("kind", &self.kind)
            .field("index", &self.index)
            .field("closed", &self.closed)
            .finish()
    }
}

fn framed<R, W>(r: R, w: W) -> Framed<R, W>
where
    R: tokio::io::AsyncRead,
    W: tokio::io::AsyncWrite,
{
    StreamChannel::new(
        BufReader::with_capacity(IO_BUFFER, r),
        BufWriter::with_capacity(IO_BUFFER, w),
    )
}

impl PeerChannel {
    fn new(inner: Inner, kind: super::TransportKind, index: u32) -> Self {
        Self {
            inner: Some(inner),
            closed: None,
            kind,
            index,
        }
    }

    pub(crate) fn quic(send: quinn::SendStream, recv: quinn::RecvStream, index: u32) -> Self {
        Self::new(
            Inner::Quic(framed(recv, send)),
            super::TransportKind::Quic,
            index,
        )
    }

    pub(crate) fn tls(stream: Tls, index: u32) -> Self {
        let (r, w) = tokio::io::split(stream);
        Self::new(
            Inner::Tls(framed(r, w)),
            super::TransportKind::TlsTcp,
            index,
        )
    }

    pub(crate) fn tcp(stream: TcpStream, index: u32) -> Self {
        let (r, w) = stream.into_split();
        Self::new(Inner::Tcp(framed(r, w)), super::TransportKind::Tcp, index)
    }

    /// The transport this channel runs over.
    pub fn kind(&self) -> super::TransportKind {
        self.kind
    }

    /// The position of this channel on its link (0 for the first channel).
    pub fn index(&self) -> u32 {
        self.index
    }

    /// Whether the channel has closed itself (after refusing an oversized frame).
    pub fn is_closed(&self) -> bool {
        self.inner.is_none()
    }

    fn live(&mut self) -> Result<&mut Inner, MpcError> {
        match (&mut self.inner, &self.closed) {
            (Some(i), _) => Ok(i),
            (None, reason) => Err(MpcError::ChannelClosed {
                reason: reason.clone().unwrap_or_else(|| "channel closed".into()),
            }),
        }
    }

    /// After a refused frame the stream is out of sync: drop it, which stops the QUIC stream or
    /// closes the TCP connection, so the peer's next send fails instead of hanging.
    fn close_on_oversize<T>(&mut self, r: Result<T, MpcError>) -> Result<T, MpcError> {
        if let Err(MpcError::FrameTooLarge { len, max }) = &r {
            self.closed = Some(format!(
                "channel {} closed after refusing a frame of {len} bytes (limit {max})",
                self.index
            ));
            self.inner = None;
        } else if let Err(MpcError::ChannelClosed { reason }) = &r {
            self.closed = Some(reason.clone());
        }
        r
    }
}

/// How long a dropped QUIC channel keeps its connection alive for the peer to acknowledge the
/// data already flushed.
const LINGER: std::time::Duration = std::time::Duration::from_secs(10);

impl PeerChannel {
    /// Flushes, then closes the sending direction and waits (up to 10 s) until the peer has
    /// received everything sent. Dropping a channel does the same in the background.
    pub async fn close(mut self) -> Result<(), MpcError> {
        if self.inner.is_some() {
            self.flush().await?;
        }
        if let Some(Inner::Quic(c)) = self.inner.take() {
            let (_, w) = c.into_inner();
            let mut send = w.into_inner();
            let _ = send.finish();
            let _ = tokio::time::timeout(LINGER, send.stopped()).await;
        }
        Ok(())
    }
}

impl Drop for PeerChannel {
    fn drop(&mut self) {
        // QUIC closes the whole connection once its last handle goes; finishing the stream and
        // holding it until the peer acknowledged keeps already-flushed frames from being lost.
        if let Some(Inner::Quic(c)) = self.inner.take() {
            let (_, w) = c.into_inner();
            let mut send = w.into_inner();
            if send.finish().is_ok() {
                if let Ok(rt) = tokio::runtime::Handle::try_current() {
                    rt.spawn(async move {
                        let _ = tokio::time::timeout(LINGER, send.stopped()).await;
                    });
                }
            }
        }
    }
}

impl Channel for PeerChannel {
    async fn send_frame(&mut self, frame: Vec<u8>) -> Result<(), MpcError> {
        let inner = self.live()?;
        let r = with_inner!(inner, c => {
            match c.send_frame(frame).await {
                Ok(()) => c.flush().await,
                e => e,
            }
        });
        self.close_on_oversize(r)
    }

    async fn recv_frame(&mut self, max_len: usize) -> Result<Vec<u8>, MpcError> {
        let inner = self.live()?;
        let r = with_inner!(inner, c => c.recv_frame(max_len).await);
        self.close_on_oversize(r)
    }

    async fn flush(&mut self) -> Result<(), MpcError> {
        let inner = self.live()?;
        with_inner!(inner, c => c.flush().await)
    }

    async fn exchange_frame(
        &mut self,
        frame: Vec<u8>,
        max_len: usize,
    ) -> Result<Vec<u8>, MpcError> {
        let inner = self.live()?;
        let r = with_inner!(inner, c => c.exchange_frame(frame, max_len).await);
        self.close_on_oversize(r)
    }
}
