//! Transports between the parties (and to the dealer): authenticated, encrypted links that carry
//! any number of independent [`mpc::net::Channel`]s.
//!
//! # Kinds
//!
//! | [`TransportKind`] | config string | security | one channel is |
//! |---|---|---|---|
//! | `Quic` | `"quic"` | QUIC (RFC 9000) + TLS 1.3 (RFC 9001), mutual auth, pinned certs | a bidirectional stream |
//! | `TlsTcp` | `"tls-tcp"` | TLS 1.3 (RFC 8446) over TCP, mutual auth, pinned certs | a TCP connection |
//! | `Tcp` | `"tcp-insecure"` | **none** — no authentication, no encryption; benchmarks only | a TCP connection |
//!
//! Both secure kinds use the same [`Identity`] files, the same pinned [`PeerCert`]s (each side
//! accepts exactly the configured peer certificate and still verifies the TLS 1.3 handshake
//! signatures with ring), the same ALPN (`dyad/1`) and the ring crypto provider with AES-128-GCM
//! preferred (see [`tls`]).
//!
//! # Use
//!
//! ```no_run
//! # async fn demo() -> Result<(), party::transport::TransportError> {
//! use party::transport::*;
//! let me = Identity::generate("dyad-p0")?;
//! let peer = PeerCert::load("p1/cert.pem".as_ref())?;
//! let opts = TransportOptions::default();
//! // P0 listens, P1 connects (with retries until `opts.connect_timeout`).
//! let listener = listen(TransportKind::TlsTcp, "0.0.0.0:7001".parse().unwrap(), me, &[peer], &opts).await?;
//! let link = listener.accept().await?;
//! let mut online = link.next_channel().await?;   // channel 0
//! let mut offline = link.next_channel().await?;  // channel 1, e.g. for the dealer/OT phase
//! # let _ = (&mut online, &mut offline); Ok(()) }
//! ```
//!
//! [`Link::next_channel`] is symmetric: the k-th call on one side pairs with the k-th call on the
//! other (the connecting side opens, the listening side accepts; a header carries k, so concurrent
//! calls pair correctly). [`loopback_pair`] connects two fresh identities over real sockets on
//! 127.0.0.1 for in-process experiments.
//!
//! # Tuning, and what bounds QUIC
//!
//! * QUIC windows: 4 MiB per stream, 8 MiB per connection, 8 MiB send window. 8 MiB covers the
//!   bandwidth-delay product of 10 Gbit/s × 6 ms or 1 Gbit/s × 60 ms, and a whole 4 MiB mpc ring
//!   chunk fits a stream window. Larger windows (16/64/64 MiB) made things worse on loopback: a
//!   CPU-starved receiver let the UDP receive buffer overflow (≈ 1 500 lost packets and 3
//!   congestion events per GiB, +6 % CPU per byte), while 4/8/8 lost none. UDP socket buffers:
//!   8 MiB requested with socket2 (the kernel caps this at `net.core.{r,w}mem_max`, 4 MiB here;
//!   raise those sysctls on servers, and the windows with them for long fat paths).
//! * UDP payload: MTU discovery on, from 1200 up to 6500 bytes. quinn hands the kernel up to 10
//!   datagrams at once (UDP GSO), and one such batch must fit a 64 KiB UDP packet: with an upper
//!   bound of 8 KiB or 64 KiB, discovery succeeded (a probe is a single datagram), the batches of
//!   ten that followed were refused, the losses looked like a black hole and quinn fell back to
//!   1200-byte datagrams — the "did not take effect" and "stall" earlier measurements saw. Up to
//!   6500 bytes (10 × 6500 < 65 507) loopback runs at 6.5 KB datagrams, 1.7–2× the throughput of
//!   1452-byte ones (`experiments/configs/transport-bench.toml`); on an Ethernet path the probes
//!   above 1452 bytes are lost and discovery settles there, on a jumbo-frame path at 6500.
//! * ACK frequency (ACK every 16th packet instead of every 2nd) changed nothing measurable, so it
//!   stays off ([`TransportOptions::ack_eliciting_threshold`]).
//! * Congestion control: Cubic (quinn's default; BBR, experimental in quinn, measured the same).
//! * Keep-alive every 5 s and an idle timeout of 10 minutes: long local computations (a big matrix
//!   product on rayon) do not close the link — quinn's tasks keep answering while rayon computes —
//!   and a peer that vanishes without a word is noticed after the idle timeout.
//! * TCP kinds: `TCP_NODELAY`, keep-alive probes after 10 s idle; socket buffers are left to
//!   Linux auto-tuning (setting SO_SNDBUF/SO_RCVBUF would switch it off). TLS 1.3 only,
//!   AES-128-GCM first.
//! * Every frame is flushed when `send_frame` returns (mpc's protocols do not call `flush`); a
//!   64 KiB write buffer joins a small frame and its header into one write, and a large frame
//!   leaves with its header in one vectored write (one TCP send, one run of TLS records).
//! * TLS over TCP reads the socket through a 256 KiB buffer: rustls asks for 4 KiB per read, so a
//!   16 KiB record cost four system calls (see `experiments/configs/transport-bench.toml` for the
//!   three kinds measured in one run).
//!
//! Measured with `experiments/configs/transport-bench.toml` (64 MiB one way in 1 MiB frames,
//! sender and receiver on separate tasks, 9 repetitions, medians) on a shared 2-core VM under a
//! load of 8–9, before and after the changes above, in alternating runs: plain TCP 1,350–1,630
//! MiB/s at ≈ 0.47 CPU-seconds per GiB; TLS over TCP 805–844 → 865–868 MiB/s, 0.80–0.96 → 0.82–0.84
//! CPU-s/GiB (53–60 % of TCP in the same run either way: within the noise of the machine); QUIC
//! 392–411 → 612–705 MiB/s, 1.76 → 0.98–1.05 CPU-s/GiB (26–30 % → 43 % of TCP). What remains for TLS is AES-GCM (a
//! quarter of a profile), the kernel's loopback path and two copies of every byte inside rustls
//! (plaintext into the record, the opened record out to the reader); sealing and opening run on
//! one rustls connection, so one link cannot spread them over two cores. QUIC stays bounded by
//! per-packet work on its connection's single driver task (AES-GCM and header protection per
//! packet, frame encoding, ACK processing), now amortized over 6.5 KB instead of 1.4 KB where the
//! path allows. Smaller QUIC windows (2/3/3 MiB) ran faster still on loopback but would cap a
//! long fat path, so the windows stay. **`tls-tcp` remains the choice for bulk 2PC traffic**;
//! QUIC remains available for its stream multiplexing and lossy networks.

mod channel;
mod error;
mod fingerprint;
mod identity;
pub(crate) mod link;
mod provider;
mod quic;
mod tcp;
pub mod tls;

pub use channel::PeerChannel;
pub use error::{Result, TransportError};
pub use identity::{Fingerprint, Identity, PeerCert, CERT_FILE, KEY_FILE};

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Which transport a link uses; chosen at run time (configs name it by string).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TransportKind {
    /// QUIC with TLS 1.3 and pinned certificates (`"quic"`).
    #[serde(rename = "quic")]
    Quic,
    /// TLS 1.3 over TCP with pinned certificates (`"tls-tcp"`).
    #[serde(rename = "tls-tcp")]
    TlsTcp,
    /// Plain TCP: **insecure**, no authentication or encryption; for benchmarks only
    /// (`"tcp-insecure"`).
    #[serde(rename = "tcp-insecure")]
    Tcp,
}

impl TransportKind {
    /// All kinds, secure first.
    pub const ALL: [TransportKind; 3] = [
        TransportKind::Quic,
        TransportKind::TlsTcp,
        TransportKind::Tcp,
    ];

    /// The configuration string.
    pub fn as_str(self) -> &'static str {
        match self {
            TransportKind::Quic => "quic",
            TransportKind::TlsTcp => "tls-tcp",
            TransportKind::Tcp => "tcp-insecure",
        }
    }

    /// Whether the kind authenticates the peer and encrypts.
    pub fn is_secure(self) -> bool {
        !matches!(self, TransportKind::Tcp)
    }
}

impl std::fmt::Display for TransportKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for TransportKind {
    type Err = TransportError;
    fn from_str(s: &str) -> Result<Self> {
        TransportKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| TransportError::UnknownTransport {
                value: s.to_string(),
            })
    }
}

/// QUIC congestion controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Congestion {
    /// CUBIC (RFC 9438), the default.
    Cubic,
    /// NewReno (RFC 9002).
    NewReno,
    /// BBR (experimental in quinn).
    Bbr,
}

/// Timeouts and tuning of a link; [`Default`] is what the servers use (see the module docs).
#[derive(Debug, Clone)]
pub struct TransportOptions {
    /// How long [`connect`] keeps retrying (with backoff) before giving up.
    pub connect_timeout: Duration,
    /// Limit on one handshake (TCP/TLS/QUIC plus the link header).
    pub handshake_timeout: Duration,
    /// QUIC: the link fails after this long without any packet from the peer.
    pub idle_timeout: Duration,
    /// QUIC: a keep-alive is sent after this long without traffic.
    pub keep_alive_interval: Duration,
    /// QUIC: requested SO_SNDBUF / SO_RCVBUF of the UDP socket (bytes).
    pub socket_buffer: usize,
    /// QUIC: receive window per stream (bytes).
    pub stream_window: u64,
    /// QUIC: receive window per connection (bytes).
    pub connection_window: u64,
    /// QUIC: send window per connection (bytes).
    pub send_window: u64,
    /// QUIC: initial UDP payload size (at least 1200).
    pub initial_mtu: u16,
    /// QUIC: largest UDP payload MTU discovery may reach, and the largest accepted. Keep it at or
    /// below 6550: quinn passes up to 10 datagrams to the kernel at once (UDP GSO) and the batch
    /// must fit one 64 KiB UDP packet, else the batches fail and quinn falls back to 1200 bytes.
    pub max_udp_payload: u16,
    /// QUIC: probe for larger packets (DPLPMTUD, RFC 8899).
    pub mtu_discovery: bool,
    /// QUIC: congestion controller.
    pub congestion: Congestion,
    /// QUIC: ask the peer to acknowledge only every `n + 1`-th packet (ACK frequency extension,
    /// draft-ietf-quic-ack-frequency); `None` keeps the standard "every other packet".
    pub ack_eliciting_threshold: Option<u32>,
}

impl Default for TransportOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(600),
            keep_alive_interval: Duration::from_secs(5),
            socket_buffer: 8 << 20,
            stream_window: 4 << 20,
            connection_window: 8 << 20,
            send_window: 8 << 20,
            initial_mtu: 1200,
            max_udp_payload: 6500,
            mtu_discovery: true,
            congestion: Congestion::Cubic,
            ack_eliciting_threshold: None,
        }
    }
}

#[derive(Debug)]
enum LinkInner {
    Quic(quic::QuicLink),
    Stream(tcp::StreamLink),
}

/// An established, authenticated connection to one peer, carrying independent channels.
#[derive(Debug)]
pub struct Link {
    kind: TransportKind,
    inner: LinkInner,
    next: AtomicU32,
}

impl Link {
    fn new(kind: TransportKind, inner: LinkInner) -> Self {
        Self {
            kind,
            inner,
            next: AtomicU32::new(0),
        }
    }

    /// The transport of this link.
    pub fn kind(&self) -> TransportKind {
        self.kind
    }

    /// The peer's address.
    pub fn remote_addr(&self) -> SocketAddr {
        match &self.inner {
            LinkInner::Quic(q) => q.conn.remote_address(),
            LinkInner::Stream(s) => s.remote,
        }
    }

    /// The pinned certificate the peer authenticated with (`None` for insecure TCP).
    pub fn peer(&self) -> Option<&PeerCert> {
        match &self.inner {
            LinkInner::Quic(q) => Some(&q.peer),
            LinkInner::Stream(s) => s.peer.as_ref(),
        }
    }

    /// The next channel of the link. Both sides call it; their k-th calls are connected to each
    /// other (the connecting side opens the channel, the listening side waits for it). With the
    /// TCP kinds the listening side can only receive new channels while its listener, or another
    /// link accepted by it, is alive.
    pub async fn next_channel(&self) -> Result<PeerChannel> {
        let index = self.next.fetch_add(1, Ordering::Relaxed);
        match &self.inner {
            LinkInner::Quic(q) => match q.is_listening_side() {
                true => q.accept(index).await,
                false => q.open(index).await,
            },
            LinkInner::Stream(s) => s.channel(index).await,
        }
    }

    /// QUIC connection statistics (packets, datagrams, losses, congestion events, RTT, MTU);
    /// `None` for the TCP kinds.
    pub fn quic_stats(&self) -> Option<quinn::ConnectionStats> {
        match &self.inner {
            LinkInner::Quic(q) => Some(q.conn.stats()),
            LinkInner::Stream(_) => None,
        }
    }

    /// Closes a QUIC connection at once; TCP links close when their channels are dropped.
    /// Close or drop the channels first so their flushed data is delivered.
    pub fn close(&self) {
        if let LinkInner::Quic(q) = &self.inner {
            q.close();
        }
    }
}

#[derive(Debug)]
enum ListenerInner {
    Quic(quic::QuicListener),
    Stream(tcp::StreamListener),
}

/// A bound listener that accepts links from pinned peers.
#[derive(Debug)]
pub struct Listener {
    kind: TransportKind,
    inner: ListenerInner,
}

/// Binds a listener of `kind` on `addr` (port 0 picks a free port, see
/// [`Listener::local_addr`]); secure kinds accept only peers presenting one of `peers`.
pub async fn listen(
    kind: TransportKind,
    addr: SocketAddr,
    me: Identity,
    peers: &[PeerCert],
    opts: &TransportOptions,
) -> Result<Listener> {
    let me = Arc::new(me);
    let inner = match kind {
        TransportKind::Quic => ListenerInner::Quic(quic::QuicListener::bind(
            addr,
            me,
            peers.to_vec(),
            opts.clone(),
        )?),
        TransportKind::TlsTcp => ListenerInner::Stream(
            tcp::StreamListener::bind(
                addr,
                Some(tcp::ServerAuth {
                    me,
                    peers: peers.to_vec(),
                }),
                opts.clone(),
            )
            .await?,
        ),
        TransportKind::Tcp => {
            ListenerInner::Stream(tcp::StreamListener::bind(addr, None, opts.clone()).await?)
        }
    };
    Ok(Listener { kind, inner })
}

impl Listener {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        match &self.inner {
            ListenerInner::Quic(q) => q.local_addr(),
            ListenerInner::Stream(s) => s.local_addr(),
        }
    }

    /// The transport of this listener.
    pub fn kind(&self) -> TransportKind {
        self.kind
    }

    /// Waits for the next link. Attempts that merely went away (the peer gave up or timed out
    /// mid-handshake, as a retrying [`connect`] does) are logged and skipped; an attempt that
    /// fails authentication (a certificate that is not pinned, a bad ALPN or header) is returned
    /// as an error — call again to go on listening.
    pub async fn accept(&self) -> Result<Link> {
        loop {
            let r = match &self.inner {
                ListenerInner::Quic(q) => q.accept().await.map(LinkInner::Quic),
                ListenerInner::Stream(s) => s.accept().await.map(LinkInner::Stream),
            };
            match r {
                Ok(inner) => return Ok(Link::new(self.kind, inner)),
                Err(
                    e @ (TransportError::Quic { .. }
                    | TransportError::Timeout { .. }
                    | TransportError::Io { .. }),
                ) => tracing::warn!("skipping a failed connection attempt: {e}"),
                Err(e) => return Err(e),
            }
        }
    }
}

fn is_permanent(e: &TransportError) -> bool {
    !matches!(
        e,
        TransportError::Io { .. }
            | TransportError::Timeout { .. }
            | TransportError::Quic { .. }
            | TransportError::LinkClosed { .. }
    )
}

/// Connects to a listener at `addr`, presenting `me` and accepting only `peer` (both ignored by
/// the insecure TCP kind). Retries with exponential backoff (50 ms to 1 s) while the listener is
/// not up yet, until `opts.connect_timeout`; authentication failures are not retried.
pub async fn connect(
    kind: TransportKind,
    addr: SocketAddr,
    me: Identity,
    peer: &PeerCert,
    opts: &TransportOptions,
) -> Result<Link> {
    let me = Arc::new(me);
    let start = Instant::now();
    let deadline = start + opts.connect_timeout;
    let mut backoff = Duration::from_millis(50);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let attempt = async {
            Ok::<_, TransportError>(match kind {
                TransportKind::Quic => LinkInner::Quic(quic::connect(addr, &me, peer, opts).await?),
                TransportKind::TlsTcp => LinkInner::Stream(
                    tcp::StreamLink::connect(
                        addr,
                        Some(tcp::ClientAuth {
                            me: me.clone(),
                            peer: peer.clone(),
                        }),
                    )
                    .await?,
                ),
                TransportKind::Tcp => {
                    LinkInner::Stream(tcp::StreamLink::connect(addr, None).await?)
                }
            })
        };
        let limit = opts.handshake_timeout.min(left);
        let err = match tokio::time::timeout(limit, attempt).await {
            Ok(Ok(inner)) => return Ok(Link::new(kind, inner)),
            Ok(Err(e)) if is_permanent(&e) => return Err(e),
            Ok(Err(e)) => e,
            Err(_) => TransportError::Timeout {
                addr,
                after: limit,
                during: "connection attempt",
            },
        };
        if Instant::now() + backoff >= deadline {
            tracing::warn!("giving up on {addr}; last error: {err}");
            return Err(TransportError::Timeout {
                addr,
                after: start.elapsed(),
                during: "connecting (with retries)",
            });
        }
        tracing::debug!("retrying {addr} in {backoff:?}: {err}");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(1));
    }
}

/// Two connected links on 127.0.0.1 between two fresh identities (`"dyad-p0"` listens,
/// `"dyad-p1"` connects): the listening side's link first.
pub async fn loopback_links(kind: TransportKind, opts: &TransportOptions) -> Result<(Link, Link)> {
    let p0 = Identity::generate("dyad-p0")?;
    let p1 = Identity::generate("dyad-p1")?;
    let (c0, c1) = (p0.certificate().clone(), p1.certificate().clone());
    let listener = listen(
        kind,
        (std::net::Ipv4Addr::LOCALHOST, 0).into(),
        p0,
        &[c1],
        opts,
    )
    .await?;
    let addr = listener.local_addr();
    let (a, b) = tokio::join!(listener.accept(), connect(kind, addr, p1, &c0, opts));
    Ok((a?, b?))
}

/// Two connected channels on 127.0.0.1 (P0's, P1's), for running both parties in one process
/// over the same transport as real servers.
pub async fn loopback_pair(kind: TransportKind) -> Result<(PeerChannel, PeerChannel)> {
    let (l0, l1) = loopback_links(kind, &TransportOptions::default()).await?;
    let (a, b) = tokio::join!(l0.next_channel(), l1.next_channel());
    Ok((a?, b?))
}
