//! The client side of the party protocol ([`crate::proto`]): connect to one party over TLS 1.3
//! (pinning the party's certificate, presenting the client's), authenticate, upload a share,
//! commit, list, delete, submit a job and follow its progress, fetch a model share and reveal a
//! model from both parties' shares. Used by `share-upload`, `party train`, `experiment run
//! --remote` and the end-to-end tests.
//!
//! A [`ClientConfig`] file (`p0.toml`, `p1.toml`, written by `party client-init`) names one party:
//! its client address, its pinned certificate and the client's identity (or token).
//!
//! # Authentication
//!
//! A client registered by certificate fingerprint proves possession of its key in the TLS
//! handshake. A token client never sends its token: [`Client::connect`] derives the credential
//! for the party it connects to from the token and the fingerprint of the certificate it pins
//! for that connection ([`crate::server::auth::derive_credential`]), and sends only that. Each
//! party thus learns only its own credential `K_i`, which is useless at the other party (it
//! registered the hash of a different value): a curious P0 cannot replay what the client sent it
//! to pass as the client at P1 and fetch P1's model share. The credential is zeroized after use.

use crate::proto::{
    ClientHello, ClientRequest, EntryId, EntryInfo, ErrorCode, Reply, UploadHeader, UploadOptions,
    MAX_CONTROL_FRAME, UPLOAD_CHUNK,
};
use crate::server::auth::{derive_credential, CLIENT_ALPN};
use crate::transport::{tls, Identity, PeerCert, TransportError};
use mpc::net::{Channel, ChannelExt, StreamChannel};
use mpc::{MpcError, Share};
use ndarray::Array2;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::{ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

mod job;
pub mod join;
mod prep;

pub use job::{cross_entropy, EpochLoss, JobDone, JobProgress, JobUpdate, P_TRUE_FLOOR};
pub use prep::{evaluate_spec, fold_spec, standardize_spec, JobResult, ResultKind};

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
    /// A client configuration file could not be read or written.
    #[error("{path}: {source}")]
    ConfigFile {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A client configuration file is malformed.
    #[error("{path}:{line}:{column}: {message}")]
    ConfigSyntax {
        /// The file.
        path: PathBuf,
        /// Line (1-based; 0 when unknown).
        line: usize,
        /// Column (1-based; 0 when unknown).
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// The two model shares do not fit together (different shapes or fixed-point formats), or
    /// do not fit the architecture the client expects.
    #[error("model shares do not fit: P0 sent {p0:?}, P1 sent {p1:?}, expected {expected}")]
    ModelMismatch {
        /// P0's (rows, cols, frac_bits).
        p0: (usize, usize, u32),
        /// P1's (rows, cols, frac_bits).
        p1: (usize, usize, u32),
        /// What was expected.
        expected: String,
    },
    /// A revealed ST-GCN model does not decode (wrong length, a non-finite value) or cannot
    /// be written.
    #[error(transparent)]
    ModelFile(#[from] crate::model_file::ModelFileError),
    /// The client connected to P1 where P0 was expected, or the other way round.
    #[error("{addr} is party {got}, expected party {want}")]
    WrongRole {
        /// The party's address.
        addr: SocketAddr,
        /// Its role.
        got: u8,
        /// The expected role.
        want: u8,
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
    addr: SocketAddr,
}

/// Frame size of a paced upload: about a tenth of a second of data, at most [`UPLOAD_CHUNK`].
fn pace_chunk(max_rate: Option<u64>) -> usize {
    match max_rate {
        Some(r) if r > 0 => ((r / 10) as usize).clamp(4096, UPLOAD_CHUNK),
        _ => UPLOAD_CHUNK,
    }
}

pub(crate) fn refused(r: Reply) -> ClientError {
    match r {
        Reply::Error { code, message } => ClientError::Refused { code, message },
        other => ClientError::Unexpected {
            got: format!("{other:?}"),
        },
    }
}

impl Client {
    /// Connects to the party at `addr` whose certificate is `party`, presenting `me` (a
    /// registered identity, or a fresh one when authenticating by `token`). With a token, the
    /// hello carries only the credential derived for `party`'s certificate, never the token.
    ///
    /// # Errors
    /// Connection, TLS, or [`ClientError::Refused`] when the party does not admit the client.
    pub async fn connect(
        addr: SocketAddr,
        party: &PeerCert,
        me: &Identity,
        token: Option<&str>,
    ) -> Result<Self> {
        let credential = token.map(|t| derive_credential(t, &party.fingerprint()));
        let mut ch = Self::connect_raw(addr, party, me).await?;
        ch.send(&ClientHello { credential }).await?;
        ch.flush().await?;
        match ch.recv::<Reply>(MAX_CONTROL_FRAME).await? {
            Reply::Welcome { role } => Ok(Self { ch, role, addr }),
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
        self.upload_keyed(header, options, bytes, &[], progress, max_rate)
            .await
    }

    /// As [`Client::upload_with`], then the row key tags `keys` (vertical partitioning: the
    /// options carry their digest in `keys`; empty for an upload without keys).
    ///
    /// # Errors
    /// Connection errors, [`ClientError::Refused`].
    pub async fn upload_keyed(
        &mut self,
        header: UploadHeader,
        options: UploadOptions,
        bytes: &[u8],
        keys: &[u8],
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
        for chunk in keys.chunks(UPLOAD_CHUNK) {
            self.ch.send_frame(chunk.to_vec()).await?;
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
    pub async fn model_share(&mut self, job: EntryId) -> Result<(Share, mpc::FracBits)> {
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

    /// Fetches this party's share of the model trained by `job` with its description; a model
    /// trained on standardized data comes without share words (it is revealed folded).
    ///
    /// # Errors
    /// Connection errors, [`ClientError::Refused`].
    pub async fn model_share_meta(&mut self, job: EntryId) -> Result<ModelShare> {
        match self.request(&ClientRequest::RevealModel { job }).await? {
            Reply::ModelShareMeta {
                rows,
                cols,
                frac_bits,
                model,
                standardization,
            } => {
                let share = if rows == 0 {
                    Share::zeros(0, cols as usize)
                } else {
                    Share::from_ring(self.ch.recv_ring(rows as usize, cols as usize).await?)
                };
                Ok(ModelShare {
                    share,
                    frac_bits,
                    model,
                    standardization,
                })
            }
            other => Err(refused(other)),
        }
    }

    /// The party's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The raw channel (tests).
    pub fn channel(&mut self) -> &mut ClientChannel {
        &mut self.ch
    }

    /// The client's committed datasets and models.
    ///
    /// # Errors
    /// Connection errors, [`ClientError::Refused`].
    pub async fn list(&mut self) -> Result<Vec<EntryInfo>> {
        match self.request(&ClientRequest::List).await? {
            Reply::Entries(es) => Ok(es),
            other => Err(refused(other)),
        }
    }
}

/// One party's answer to `RevealModel`.
#[derive(Debug)]
pub struct ModelShare {
    /// The party's share (no rows for a model revealed only folded).
    pub share: Share,
    /// The model's fractional bits.
    pub frac_bits: mpc::FracBits,
    /// What the column holds (`None` for the single-matrix models of earlier versions).
    pub model: Option<crate::proto::ModelMeta>,
    /// How its training set was standardized (`None`: raw data).
    pub standardization: Option<crate::proto::StandardizationInfo>,
}

/// Reveals the model trained by `job` to its owner: each party sends the owner its share (and
/// only to the owner), the owner reconstructs and decodes the fixed-point values. Returns the
/// model as stored (a weight column; an MLP's layers flattened, see
/// [`crate::server::job::unflatten_layers`]).
///
/// # Errors
/// Connection errors, [`ClientError::Refused`] (not the owner, no such model),
/// [`ClientError::WrongRole`], [`ClientError::ModelMismatch`].
pub async fn reveal_model(p0: &mut Client, p1: &mut Client, job: EntryId) -> Result<Array2<f64>> {
    for (c, want) in [(&*p0, 0u8), (&*p1, 1)] {
        if c.role != want {
            return Err(ClientError::WrongRole {
                addr: c.addr,
                got: c.role,
                want,
            });
        }
    }
    let (s0, f0) = p0.model_share(job).await?;
    let (s1, f1) = p1.model_share(job).await?;
    if s0.dim() != s1.dim() || f0 != f1 {
        return Err(ClientError::ModelMismatch {
            p0: (s0.dim().0, s0.dim().1, f0.get()),
            p1: (s1.dim().0, s1.dim().1, f1.get()),
            expected: "the same shape and fractional bits".into(),
        });
    }
    let fp = mpc::FixedPoint::new(f0);
    Ok(fp.decode_matrix(&mpc::share::reconstruct(&s0, &s1).view()))
}

/// How a client reaches one party (`p0.toml` / `p1.toml`, written by `party client-init`).
/// Relative paths are relative to the file.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// The party's client address.
    pub address: SocketAddr,
    /// The party's certificate (PEM), pinned: no other certificate is accepted.
    pub party_certificate: PathBuf,
    /// The client's identity directory (`cert.pem`, `key.pem`), registered at the party by
    /// fingerprint; when absent, a fresh identity is used with the token.
    #[serde(default)]
    pub identity_dir: Option<PathBuf>,
    /// A bearer token, instead of or besides the identity. It is not sent: the party registers
    /// the SHA-256 of the credential derived from it for its certificate (`party hash-token`).
    #[serde(default)]
    pub token: Option<String>,
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("address", &self.address)
            .field("party_certificate", &self.party_certificate)
            .field("identity_dir", &self.identity_dir)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl ClientConfig {
    /// Reads a client configuration; relative paths become relative to the file's directory.
    ///
    /// # Errors
    /// [`ClientError::ConfigFile`], [`ClientError::ConfigSyntax`] naming the file, line and column.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| ClientError::ConfigFile {
            path: path.to_path_buf(),
            source,
        })?;
        let mut c: Self = toml::from_str(&text).map_err(|e| {
            let (line, column) = e.span().map_or((0, 0), |s| {
                let line = text[..s.start].matches('\n').count() + 1;
                let col = s.start - text[..s.start].rfind('\n').map_or(0, |i| i + 1) + 1;
                (line, col)
            });
            ClientError::ConfigSyntax {
                path: path.to_path_buf(),
                line,
                column,
                message: e.message().to_string(),
            }
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        c.party_certificate = base.join(&c.party_certificate);
        c.identity_dir = c.identity_dir.map(|d| base.join(d));
        if c.identity_dir.is_none() && c.token.is_none() {
            return Err(ClientError::ConfigSyntax {
                path: path.to_path_buf(),
                line: 0,
                column: 0,
                message: "give identity_dir (registered fingerprint) or token".into(),
            });
        }
        Ok(c)
    }

    /// The configuration as commented TOML (paths as given).
    pub fn to_toml(&self, role: u8) -> String {
        let mut s = format!(
            "# Dyad client configuration for party {role} (`party client-init`). Relative paths are\n\
             # relative to this file. Used by `experiment run --remote p0.toml,p1.toml CONFIG`.\n\
             address = \"{}\"                # the party's client endpoint\n\
             party_certificate = {:?}   # the party's cert.pem, pinned\n",
            self.address,
            self.party_certificate.display().to_string(),
        );
        if let Some(d) = &self.identity_dir {
            s.push_str(&format!(
                "identity_dir = {:?}   # this client's cert.pem + key.pem (register its fingerprint at the party)\n",
                d.display().to_string()
            ));
        }
        match &self.token {
            Some(t) => s.push_str(&format!("token = {t:?}\n")),
            None => s.push_str(
                "# token = \"...\"   # or a bearer token (register `party hash-token` at the party)\n",
            ),
        }
        s
    }

    /// Connects and authenticates to the party.
    ///
    /// # Errors
    /// As [`Client::connect`]; identity and certificate files that cannot be read.
    pub async fn connect(&self) -> Result<Client> {
        let cert = PeerCert::load(&self.party_certificate)?;
        let me = match &self.identity_dir {
            Some(d) => Identity::load(d)?,
            None => Identity::generate("dyad-client")?,
        };
        Client::connect(self.address, &cert, &me, self.token.as_deref()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_configs_round_trip_with_paths_relative_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let c = ClientConfig {
            address: "127.0.0.1:7200".parse().unwrap(),
            party_certificate: "p0-cert.pem".into(),
            identity_dir: Some(".".into()),
            token: Some("secret-token".into()),
        };
        let p = dir.path().join("p0.toml");
        std::fs::write(&p, c.to_toml(0)).unwrap();
        let back = ClientConfig::load(&p).unwrap();
        assert_eq!(back.address, c.address);
        assert_eq!(back.party_certificate, dir.path().join("p0-cert.pem"));
        assert_eq!(back.identity_dir, Some(dir.path().join(".")));
        assert_eq!(back.token.as_deref(), Some("secret-token"));
        assert!(!format!("{back:?}").contains("secret-token"));
    }

    #[test]
    fn client_config_errors_name_file_line_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("p1.toml");
        std::fs::write(
            &p,
            "address = \"127.0.0.1:1\"\nparty_certificate = \"c.pem\"\nidentity = \".\"\n",
        )
        .unwrap();
        let e = ClientConfig::load(&p).unwrap_err().to_string();
        assert!(e.contains("p1.toml:3:1") && e.contains("identity"), "{e}");
        std::fs::write(
            &p,
            "address = \"127.0.0.1:1\"\nparty_certificate = \"c.pem\"\n",
        )
        .unwrap();
        let e = ClientConfig::load(&p).unwrap_err().to_string();
        assert!(e.contains("identity_dir") && e.contains("token"), "{e}");
        let e = ClientConfig::load(&dir.path().join("none.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("none.toml"), "{e}");
    }
}
