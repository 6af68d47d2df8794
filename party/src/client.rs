//! The client side of the party protocol ([`crate::proto`]): connect to one party over TLS 1.3
//! (pinning the party's certificate, presenting the client's), authenticate, upload a share,
//! commit, list, delete, submit a job, fetch a model share. Used by `share-upload`,
//! `party job ...` and the end-to-end tests.

use crate::proto::{
    ClientHello, ClientRequest, EntryId, ErrorCode, Reply, UploadHeader, UploadOptions,
    MAX_CONTROL_FRAME, UPLOAD_CHUNK,
};
use crate::server::auth::CLIENT_ALPN;
use crate::transport::{tls, Identity, PeerCert, TransportError};
use mpc::net::{Channel, ChannelExt, StreamChannel};
use mpc::{MpcError, Share};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// Errors of a client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// TLS configuration or identity problem.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// Connecting or the handshake failed.
    #[error("connecting to {addr}: {source}")]
    Connect {
        /// The party.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The connection failed or a message was malformed.
    #[error(transparent)]
    Channel(#[from] MpcError),
    /// The party refused or failed the request.
    #[error("party refused ({code:?}): {message}")]
    Refused {
        /// Category.
        code: ErrorCode,
        /// The party's explanation.
        message: String,
    },
    /// A reply that does not fit the request.
    #[error("unexpected reply: {got}")]
    Unexpected {
        /// The reply, printed.
        got: String,
    },
}

/// Result of client operations.
pub type Result<T> = std::result::Result<T, ClientError>;

type Tls = TlsStream<TcpStream>;
/// The framed TLS connection of a client.
pub type ClientChannel = StreamChannel<ReadHalf<Tls>, WriteHalf<Tls>>;

/// An authenticated connection to one party.
#[derive(Debug)]
pub struct Client {
    ch: ClientChannel,
    role: u8,
}

/// Frame size of a paced upload: about a tenth of a second of data, at most [`UPLOAD_CHUNK`].
fn pace_chunk(max_rate: Option<u64>) -> usize {
    match max_rate {
        Some(r) if r > 0 => ((r / 10) as usize).clamp(4096, UPLOAD_CHUNK),
        _ => UPLOAD_CHUNK,
    }
}

fn refused(r: Reply) -> ClientError {
    match r {
        Reply::Error { code, message } => ClientError::Refused { code, message },
        other => ClientError::Unexpected {
            got: format!("{other:?}"),
        },
    }
}

impl Client {
    /// Connects to the party at `addr` whose certificate is `party`, presenting `me` (a
    /// registered identity, or a fresh one when authenticating by `token`).
    ///
    /// # Errors
    /// Connection, TLS, or [`ClientError::Refused`] when the party does not admit the client.
    pub async fn connect(
        addr: SocketAddr,
        party: &PeerCert,
        me: &Identity,
        token: Option<String>,
    ) -> Result<Self> {
        let mut ch = Self::connect_raw(addr, party, me).await?;
        ch.send(&ClientHello { token }).await?;
        ch.flush().await?;
        match ch.recv::<Reply>(MAX_CONTROL_FRAME).await? {
            Reply::Welcome { role } => Ok(Self { ch, role }),
            other => Err(refused(other)),
        }
    }

    /// The TLS connection before the hello (for tests that send malformed frames).
    ///
    /// # Errors
    /// Connection or TLS errors.
    pub async fn connect_raw(
        addr: SocketAddr,
        party: &PeerCert,
        me: &Identity,
    ) -> Result<ClientChannel> {
        let (mut cfg, _pins) = tls::client_config(me, party)?;
        cfg.alpn_protocols = vec![CLIENT_ALPN.to_vec()];
        let conn = tokio_rustls::TlsConnector::from(Arc::new(cfg));
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|source| ClientError::Connect { addr, source })?;
        let _ = tcp.set_nodelay(true);
        let name = rustls::pki_types::ServerName::try_from(tls::SERVER_NAME).expect("valid name");
        let stream = conn
            .connect(name, tcp)
            .await
            .map_err(|source| ClientError::Connect { addr, source })?;
        let (r, w) = tokio::io::split(stream);
        Ok(StreamChannel::new(r, w))
    }

    /// The party's role (0 or 1).
    pub fn role(&self) -> u8 {
        self.role
    }

    /// Sends a request.
    ///
    /// # Errors
    /// Connection errors.
    pub async fn send(&mut self, req: &ClientRequest) -> Result<()> {
        self.ch.send(req).await?;
        Ok(self.ch.flush().await?)
    }

    /// Receives the next reply (an `Error` reply is returned as [`ClientError::Refused`]).
    ///
    /// # Errors
    /// Connection errors, [`ClientError::Refused`].
    pub async fn recv(&mut self) -> Result<Reply> {
        match self.ch.recv::<Reply>(MAX_CONTROL_FRAME).await? {
            e @ Reply::Error { .. } => Err(refused(e)),
            r => Ok(r),
        }
    }

    /// Sends a request and returns its (single) reply.
    ///
    /// # Errors
    /// As [`Client::send`] and [`Client::recv`].
    pub async fn request(&mut self, req: &ClientRequest) -> Result<Reply> {
        self.send(req).await?;
        self.recv().await
    }

    /// Uploads one share (`bytes` described by `header`), calling `progress` with the bytes sent
    /// so far; returns once the party stored it as prepared.
    ///
    /// # Errors
    /// Connection errors, [`ClientError::Refused`].
    pub async fn upload(
        &mut self,
        header: UploadHeader,
        bytes: &[u8],
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<EntryId> {
        let id = header.id;
        self.ch.send(&ClientRequest::Upload(header)).await?;
        let mut sent = 0u64;
        for chunk in bytes.chunks(UPLOAD_CHUNK) {
            self.ch.send_frame(chunk.to_vec()).await?;
            sent += chunk.len() as u64;
            progress(sent);
        }
        self.ch.flush().await?;
        match self.recv().await? {
            Reply::Prepared { id: got } if got == id => Ok(id),
            other => Err(refused(other)),
        }
    }

    /// Uploads one share with [`UploadOptions`] (append rights, or appending to a dataset): the
    /// party checks the header and options first and refuses before any byte is sent.
    /// `max_rate` (bytes per second) paces the stream, for links shared with other traffic.
    ///
    /// # Errors
    /// Connection errors, [`ClientError::Refused`].
    pub async fn upload_with(
        &mut self,
        header: UploadHeader,
        options: UploadOptions,
        bytes: &[u8],
        progress: &(dyn Fn(u64) + Send + Sync),
        max_rate: Option<u64>,
    ) -> Result<EntryId> {
        let id = header.id;
        match self
            .request(&ClientRequest::UploadWith(header, options))
            .await?
        {
            Reply::SendShare { id: got } if got == id => {}
            other => return Err(refused(other)),
        }
        let start = std::time::Instant::now();
        let mut sent = 0u64;
        for chunk in bytes.chunks(pace_chunk(max_rate)) {
            self.ch.send_frame(chunk.to_vec()).await?;
            sent += chunk.len() as u64;
            progress(sent);
            if let Some(rate) = max_rate.filter(|&r| r > 0) {
                self.ch.flush().await?;
                let due = std::time::Duration::from_secs_f64(sent as f64 / rate as f64);
                if let Some(wait) = due.checked_sub(start.elapsed()) {
                    tokio::time::sleep(wait).await;
                }
            }
        }
        self.ch.flush().await?;
        match self.recv().await? {
            Reply::Prepared { id: got } if got == id => Ok(id),
            other => Err(refused(other)),
        }
    }

    /// Fetches this party's share of the model trained by `job`, with its fractional bits.
    ///
    /// # Errors
    /// Connection errors, [`ClientError::Refused`].
    pub async fn model_share(&mut self, job: EntryId) -> Result<(Share, u32)> {
        match self.request(&ClientRequest::Reveal { job }).await? {
            Reply::ModelShare {
                rows,
                cols,
                frac_bits,
            } => {
                let m = self.ch.recv_ring(rows as usize, cols as usize).await?;
                Ok((Share::from_ring(m), frac_bits))
            }
            other => Err(refused(other)),
        }
    }

    /// The raw channel (tests).
    pub fn channel(&mut self) -> &mut ClientChannel {
        &mut self.ch
    }
}
