//! The error type of the transport layer.
//!
//! Connection set-up, identities and certificate files report a [`TransportError`] with the
//! address, file or fingerprint involved. Once a channel is running, failures cross the
//! [`mpc::net::Channel`] boundary as [`mpc::MpcError::ChannelClosed`] (or
//! [`mpc::MpcError::FrameTooLarge`]), because protocol code only needs to know that the link is gone.

use super::fingerprint::Fingerprint;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use thiserror::Error;

/// Everything that can go wrong while setting up or running a transport.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The peer presented a certificate other than the pinned one(s).
    #[error(
        "peer at {addr} presented certificate {got_fingerprint}, but only {} is pinned",
        fingerprints(expected_fingerprints)
    )]
    PeerCertificateMismatch {
        /// The peer's address.
        addr: SocketAddr,
        /// SHA-256 fingerprints of the certificates this side accepts.
        expected_fingerprints: Vec<Fingerprint>,
        /// SHA-256 fingerprint of the certificate the peer presented.
        got_fingerprint: Fingerprint,
    },
    /// The peer refused this side's certificate (it pins another one) or aborted the handshake.
    #[error("peer at {addr} refused the connection during authentication: {reason}")]
    PeerRejected {
        /// The peer's address.
        addr: SocketAddr,
        /// The TLS alert or close reason reported by the peer.
        reason: String,
    },
    /// A TLS handshake failed for a reason other than the pinned certificate.
    #[error("TLS handshake with {addr} failed: {reason}")]
    Handshake {
        /// The peer's address.
        addr: SocketAddr,
        /// What rustls or quinn reported.
        reason: String,
    },
    /// The peer did not negotiate the Dyad ALPN protocol.
    #[error("peer at {addr} negotiated ALPN {got:?}, expected {expected:?}")]
    AlpnMismatch {
        /// The peer's address.
        addr: SocketAddr,
        /// The protocol this side requires.
        expected: String,
        /// What was negotiated (if anything).
        got: Option<String>,
    },
    /// The peer spoke, but not the Dyad link protocol (bad magic or version).
    #[error("peer at {addr} sent an invalid link header: {reason}")]
    BadLinkHeader {
        /// The peer's address.
        addr: SocketAddr,
        /// What was wrong.
        reason: String,
    },
    /// An operation did not finish in time (connecting with retries, a handshake, an accept).
    #[error("{during} with {addr} timed out after {after:?}")]
    Timeout {
        /// The remote (or local, for a listener) address.
        addr: SocketAddr,
        /// How long we waited.
        after: Duration,
        /// What was being done.
        during: &'static str,
    },
    /// A socket operation failed.
    #[error("{op} on {addr} failed: {source}")]
    Io {
        /// The operation (`bind`, `connect`, `accept`, …).
        op: &'static str,
        /// The address involved.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The QUIC connection failed or was closed.
    #[error("QUIC connection with {addr} failed: {source}")]
    Quic {
        /// The peer's address.
        addr: SocketAddr,
        /// What quinn reported.
        #[source]
        source: quinn::ConnectionError,
    },
    /// A QUIC connection could not be started (bad address, endpoint stopping, …).
    #[error("cannot start a QUIC connection to {addr}: {source}")]
    QuicConnect {
        /// The peer's address.
        addr: SocketAddr,
        /// What quinn reported.
        #[source]
        source: quinn::ConnectError,
    },
    /// The link or listener was closed (by this side or the peer) while waiting on it.
    #[error("link with {addr} is closed: {reason}")]
    LinkClosed {
        /// The peer's (or listener's) address.
        addr: SocketAddr,
        /// Why.
        reason: String,
    },
    /// A TLS configuration could not be built (for example an unusable private key).
    #[error("invalid TLS configuration: {source}")]
    TlsConfig {
        /// What rustls reported.
        #[source]
        source: rustls::Error,
    },
    /// Certificate or key generation failed.
    #[error("cannot generate a certificate for {name:?}: {source}")]
    CertificateGeneration {
        /// The subject name.
        name: String,
        /// What rcgen reported.
        #[source]
        source: rcgen::Error,
    },
    /// Reading or writing an identity file failed.
    #[error("cannot {op} {path}: {source}")]
    File {
        /// `read` or `write`.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A PEM file does not hold what it should.
    #[error("{path}: expected a PEM {expected}: {reason}")]
    InvalidPem {
        /// The file (or `<memory>`).
        path: PathBuf,
        /// `CERTIFICATE` or `PRIVATE KEY`.
        expected: &'static str,
        /// What the parser reported.
        reason: String,
    },
    /// A private key file that the group or others may read (Unix mode bits `0o077`).
    #[error(
        "{path}: private key file has mode {mode:04o}, readable by group or others (allowed: \
         owner only, 0600 or stricter); fix it with `chmod 600 {path}`"
    )]
    KeyFileMode {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// An unknown transport name in a configuration.
    #[error(
        "unknown transport {value:?}: expected one of \"quic\", \"tls-tcp\", \"tcp-insecure\""
    )]
    UnknownTransport {
        /// The string given.
        value: String,
    },
}

fn fingerprints(f: &[Fingerprint]) -> String {
    match f {
        [one] => one.to_string(),
        many => format!(
            "one of [{}]",
            many.iter()
                .map(|f| f.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Result alias of the transport layer.
pub type Result<T, E = TransportError> = std::result::Result<T, E>;
