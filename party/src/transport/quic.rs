//! The QUIC transport (RFC 9000, TLS 1.3 per RFC 9001) on quinn: one QUIC connection per link,
//! one bidirectional stream per channel.

use super::channel::PeerChannel;
use super::error::{Result, TransportError};
use super::identity::{Identity, PeerCert};
use super::link::{self, Router};
use super::tls::{self, Pins};
use super::{Congestion, TransportOptions};
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn::{Connection, Endpoint, RecvStream, SendStream, VarInt};
use std::net::SocketAddr;
use std::sync::Arc;

/// Application close code sent when a link is closed on purpose.
const CLOSE_DONE: u32 = 0;

fn transport_config(opts: &TransportOptions) -> Arc<quinn::TransportConfig> {
    let mut t = quinn::TransportConfig::default();
    let window = |b: u64| VarInt::from_u64(b).unwrap_or(VarInt::MAX);
    t.stream_receive_window(window(opts.stream_window))
        .receive_window(window(opts.connection_window))
        .send_window(opts.send_window)
        .max_concurrent_bidi_streams(VarInt::from_u32(1024))
        .max_concurrent_uni_streams(VarInt::from_u32(16))
        .initial_mtu(opts.initial_mtu)
        .min_mtu(1200)
        .keep_alive_interval(Some(opts.keep_alive_interval))
        .max_idle_timeout(
            quinn::IdleTimeout::try_from(opts.idle_timeout)
                .ok()
                .or(Some(quinn::IdleTimeout::from(VarInt::MAX))),
        )
        .datagram_receive_buffer_size(None);
    if opts.mtu_discovery {
        let mut m = quinn::MtuDiscoveryConfig::default();
        m.upper_bound(opts.max_udp_payload);
        t.mtu_discovery_config(Some(m));
    } else {
        t.mtu_discovery_config(None);
    }
    match opts.congestion {
        Congestion::Cubic => {
            t.congestion_controller_factory(Arc::new(quinn::congestion::CubicConfig::default()))
        }
        Congestion::NewReno => {
            t.congestion_controller_factory(Arc::new(quinn::congestion::NewRenoConfig::default()))
        }
        Congestion::Bbr => {
            t.congestion_controller_factory(Arc::new(quinn::congestion::BbrConfig::default()))
        }
    };
    Arc::new(t)
}

/// A UDP socket with the requested kernel buffers (the kernel caps them at net.core.*mem_max).
fn udp_socket(addr: SocketAddr, opts: &TransportOptions) -> std::io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        let _ = s.set_only_v6(false);
    }
    // Larger buffers absorb bursts of a fast sender; failures only mean the default stays.
    let _ = s.set_send_buffer_size(opts.socket_buffer);
    let _ = s.set_recv_buffer_size(opts.socket_buffer);
    s.bind(&addr.into())?;
    s.set_nonblocking(true)?;
    Ok(s.into())
}

fn endpoint(
    addr: SocketAddr,
    opts: &TransportOptions,
    server: Option<quinn::ServerConfig>,
) -> Result<Endpoint> {
    let io = |source| TransportError::Io {
        op: "bind UDP",
        addr,
        source,
    };
    let socket = udp_socket(addr, opts).map_err(io)?;
    let mut cfg = quinn::EndpointConfig::default();
    cfg.max_udp_payload_size(opts.max_udp_payload.max(1200))
        .expect("payload size clamped to the allowed range");
    Endpoint::new(cfg, server, socket, Arc::new(quinn::TokioRuntime)).map_err(io)
}

fn server_config(
    me: &Identity,
    peers: &[PeerCert],
    opts: &TransportOptions,
) -> Result<(quinn::ServerConfig, Arc<Pins>)> {
    let (tls, pins) = tls::server_config(me, peers)?;
    let crypto = QuicServerConfig::try_from(tls).expect("TLS 1.3 with AES-128-GCM is configured");
    let mut cfg = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    cfg.transport_config(transport_config(opts));
    cfg.migration(false);
    Ok((cfg, pins))
}

/// The negotiated ALPN and the peer's certificate of an established connection.
fn authenticated(conn: &Connection) -> Result<PeerCert> {
    let addr = conn.remote_address();
    let alpn = conn
        .handshake_data()
        .and_then(|d| d.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
        .and_then(|d| d.protocol);
    tls::check_alpn(addr, alpn.as_deref())?;
    let certs = conn.peer_identity().and_then(|c| {
        c.downcast::<Vec<rustls::pki_types::CertificateDer<'static>>>()
            .ok()
    });
    tls::presented(addr, certs.as_deref().map(|v| v.as_slice()))
}

/// Maps a failed connection to the most precise error.
fn conn_error(addr: SocketAddr, pins: &Pins, e: quinn::ConnectionError) -> TransportError {
    pins.explain(addr, || match &e {
        quinn::ConnectionError::ConnectionClosed(c) if is_crypto(c.error_code) => {
            TransportError::PeerRejected {
                addr,
                reason: c.to_string(),
            }
        }
        quinn::ConnectionError::TransportError(t) if is_crypto(t.code) => {
            TransportError::Handshake {
                addr,
                reason: t.to_string(),
            }
        }
        _ => TransportError::Quic { addr, source: e },
    })
}

fn is_crypto(code: quinn::TransportErrorCode) -> bool {
    (0x100..0x200).contains(&u64::from(code))
}

/// A QUIC link: a connection plus, on the listening side, the streams that arrived.
#[derive(Debug)]
pub(crate) struct QuicLink {
    pub(crate) conn: Connection,
    pub(crate) peer: PeerCert,
    /// Incoming streams (listening side only).
    router: Option<Arc<Router<(SendStream, RecvStream)>>>,
    acceptor: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for QuicLink {
    fn drop(&mut self) {
        if let Some(t) = &self.acceptor {
            t.abort();
        }
    }
}

impl QuicLink {
    /// Whether this side accepted the connection (and so accepts the streams).
    pub(crate) fn is_listening_side(&self) -> bool {
        self.router.is_some()
    }

    /// Connecting side: opens stream `index` and announces it.
    pub(crate) async fn open(&self, index: u32) -> Result<PeerChannel> {
        let addr = self.conn.remote_address();
        let (mut send, recv) = self
            .conn
            .open_bi()
            .await
            .map_err(|source| TransportError::Quic { addr, source })?;
        send.write_all(&link::quic_header(index))
            .await
            .map_err(|e| TransportError::LinkClosed {
                addr,
                reason: e.to_string(),
            })?;
        Ok(PeerChannel::quic(send, recv, index))
    }

    /// Listening side: waits for stream `index`.
    pub(crate) async fn accept(&self, index: u32) -> Result<PeerChannel> {
        let router = self.router.as_ref().expect("listening side has a router");
        let (send, recv) =
            router
                .take(index)
                .await
                .map_err(|reason| TransportError::LinkClosed {
                    addr: self.conn.remote_address(),
                    reason,
                })?;
        Ok(PeerChannel::quic(send, recv, index))
    }

    /// Closes the connection at once (unflushed data may be lost; close channels first).
    pub(crate) fn close(&self) {
        self.conn.close(VarInt::from_u32(CLOSE_DONE), b"done");
    }
}

/// Connects once (no retries): handshake, then the listener's confirmation.
pub(crate) async fn connect(
    addr: SocketAddr,
    me: &Identity,
    peer: &PeerCert,
    opts: &TransportOptions,
) -> Result<QuicLink> {
    let local: SocketAddr = if addr.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let endpoint = endpoint(local, opts, None)?;
    let (tls, pins) = tls::client_config(me, peer)?;
    let crypto = QuicClientConfig::try_from(tls).expect("TLS 1.3 with AES-128-GCM is configured");
    let mut cfg = quinn::ClientConfig::new(Arc::new(crypto));
    cfg.transport_config(transport_config(opts));
    let connecting = endpoint
        .connect_with(cfg, addr, tls::SERVER_NAME)
        .map_err(|source| TransportError::QuicConnect { addr, source })?;
    let conn = connecting.await.map_err(|e| conn_error(addr, &pins, e))?;
    let peer = authenticated(&conn)?;
    // The client finishes TLS 1.3 before the listener has checked its certificate: wait for the
    // listener's answer so that a refusal surfaces here, not at the first message.
    let mut confirm = conn
        .accept_uni()
        .await
        .map_err(|e| conn_error(addr, &pins, e))?;
    let status = link::read_answer(&mut confirm)
        .await
        .map_err(|e| match conn.close_reason() {
            Some(c) => conn_error(addr, &pins, c),
            None => TransportError::BadLinkHeader {
                addr,
                reason: e.to_string(),
            },
        })?;
    if status != link::STATUS_OK {
        return Err(TransportError::BadLinkHeader {
            addr,
            reason: format!("listener answered status {status}"),
        });
    }
    Ok(QuicLink {
        conn,
        peer,
        router: None,
        acceptor: None,
    })
}

/// A bound QUIC listener.
#[derive(Debug)]
pub(crate) struct QuicListener {
    endpoint: Endpoint,
    me: Arc<Identity>,
    peers: Vec<PeerCert>,
    opts: TransportOptions,
}

impl QuicListener {
    pub(crate) fn bind(
        addr: SocketAddr,
        me: Arc<Identity>,
        peers: Vec<PeerCert>,
        opts: TransportOptions,
    ) -> Result<Self> {
        let (cfg, _) = server_config(&me, &peers, &opts)?;
        let endpoint = endpoint(addr, &opts, Some(cfg))?;
        Ok(Self {
            endpoint,
            me,
            peers,
            opts,
        })
    }

    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.endpoint
            .local_addr()
            .expect("a bound UDP socket has an address")
    }

    /// Accepts the next connection attempt; an attempt that fails authentication is an error.
    pub(crate) async fn accept(&self) -> Result<QuicLink> {
        let local = self.local_addr();
        let incoming = self
            .endpoint
            .accept()
            .await
            .ok_or_else(|| TransportError::LinkClosed {
                addr: local,
                reason: "listener closed".into(),
            })?;
        let addr = incoming.remote_address();
        // A fresh verifier per connection, so a refused certificate is attributed to this one.
        let (cfg, pins) = server_config(&self.me, &self.peers, &self.opts)?;
        let connecting = incoming
            .accept_with(Arc::new(cfg))
            .map_err(|e| conn_error(addr, &pins, e))?;
        let conn = tokio::time::timeout(self.opts.handshake_timeout, connecting)
            .await
            .map_err(|_| TransportError::Timeout {
                addr,
                after: self.opts.handshake_timeout,
                during: "QUIC handshake",
            })?
            .map_err(|e| conn_error(addr, &pins, e))?;
        let peer = authenticated(&conn)?;
        let mut confirm = conn
            .open_uni()
            .await
            .map_err(|e| conn_error(addr, &pins, e))?;
        confirm
            .write_all(&link::answer(link::STATUS_OK))
            .await
            .map_err(|e| TransportError::LinkClosed {
                addr,
                reason: e.to_string(),
            })?;
        let _ = confirm.finish();
        let router = Arc::new(Router::new());
        let acceptor = tokio::spawn(accept_streams(
            conn.clone(),
            router.clone(),
            self.opts.handshake_timeout,
        ));
        Ok(QuicLink {
            conn,
            peer,
            router: Some(router),
            acceptor: Some(acceptor),
        })
    }
}

/// Accepts the peer's streams, reads their headers and routes them by index.
async fn accept_streams(
    conn: Connection,
    router: Arc<Router<(SendStream, RecvStream)>>,
    header_timeout: std::time::Duration,
) {
    loop {
        match conn.accept_bi().await {
            Ok((send, mut recv)) => {
                let router = router.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(header_timeout, link::read_quic_header(&mut recv))
                        .await
                    {
                        Ok(Ok(index)) => router.deliver(index, (send, recv)),
                        Ok(Err(e)) => tracing::warn!("dropping a QUIC stream: {e}"),
                        Err(_) => tracing::warn!("dropping a QUIC stream: no header in time"),
                    }
                });
            }
            Err(e) => {
                router.close(e.to_string());
                return;
            }
        }
    }
}
