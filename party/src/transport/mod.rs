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
//! * QUIC windows: 16 MiB per stream, 64 MiB per connection, 64 MiB send window — at least the
//!   bandwidth-delay product of a 10 Gbit/s path with 10 ms RTT, and larger than the 4 MiB ring
//!   chunks of mpc so a whole chunk is in flight. UDP socket buffers: 8 MiB requested (the kernel
//!   caps this at `net.core.{r,w}mem_max`, often 208 KiB; raise those sysctls on servers), so
//!   bursts from the sender are not dropped at the receiver.
//! * UDP payload: 1452 bytes maximum with MTU discovery on (starting at 1200), the Ethernet path.
//!   Larger payloads on loopback (MTU 65536) cut per-packet costs, but quinn then stalls when the
//!   receive buffer is capped (drops of 64 KiB datagrams cost whole congestion windows), so they
//!   are left as an option ([`TransportOptions::max_udp_payload`]) rather than the default.
//! * Congestion control: Cubic (quinn's default, well tested; BBR in quinn is experimental).
//! * Keep-alive every 5 s and an idle timeout of 10 minutes: long local computations (a big matrix
//!   product on rayon) do not close the link, while a vanished peer is noticed after at most the
//!   idle timeout. TCP kinds: `TCP_NODELAY`, keep-alive probes after 10 s; socket buffers are left
//!   to Linux auto-tuning (setting them would disable it).
//! * Channels buffer writes (64 KiB) so header and payload of a small frame leave together, and
//!   flush before every receive.
//!
//! Measured on loopback (see `benches/transport.rs` and the report), QUIC moves a few hundred
//! MB/s while TLS over TCP exceeds 1 GB/s. QUIC is bounded by per-packet work on one core: each
//! ~1.4 KB packet is individually sealed (AES-GCM + header protection), framed and acknowledged by
//! quinn's connection task, which runs single-threaded per connection; every packet is a separate
//! datagram through the UDP stack (GSO batches sends where the kernel allows it, but receives are
//! per datagram), whereas TCP hands 64 KiB segments to the kernel and TLS seals 16 KiB records.
//! Use `tls-tcp` for bulk 2PC traffic; QUIC remains for its stream multiplexing and for networks
//! where it is preferred.

mod channel;
mod error;
mod identity;
mod link;
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
    /// QUIC: largest UDP payload MTU discovery may reach, and the largest accepted.
    pub max_udp_payload: u16,
    /// QUIC: probe for larger packets (DPLPMTUD, RFC 8899).
    pub mtu_discovery: bool,
    /// QUIC: congestion controller.
    pub congestion: Congestion,
}

impl Default for TransportOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(600),
            keep_alive_interval: Duration::from_secs(5),
            socket_buffer: 8 << 20,
            stream_window: 16 << 20,
            connection_window: 64 << 20,
            send_window: 64 << 20,
            initial_mtu: 1200,
            max_udp_payload: 1452,
            mtu_discovery: true,
            congestion: Congestion::Cubic,
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
