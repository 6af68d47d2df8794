//! TLS 1.3 (RFC 8446) configuration with pinned peer certificates, shared by the QUIC
//! (RFC 9001) and TLS-over-TCP transports.
//!
//! Both directions authenticate: the connecting side pins the listener's certificate with a
//! custom [`ServerCertVerifier`], the listener pins its peer(s) with a [`ClientCertVerifier`] that
//! makes client certificates mandatory. A presented end-entity certificate is accepted exactly
//! when its DER bytes equal a pinned certificate; the handshake signatures are still verified with
//! the public key of that certificate through the ring provider's algorithms, so possession of the
//! private key is proven. Only TLS 1.3 is offered. The ring [`CryptoProvider`] is chosen
//! explicitly (no process-wide default, no aws-lc), with AES-128-GCM preferred: it meets the
//! project's 128-bit target and is the fastest suite with AES-NI.

use super::error::{Result, TransportError};
use super::identity::{Fingerprint, Identity, PeerCert};
pub use super::provider::provider;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use std::sync::{Arc, Mutex};

/// The ALPN protocol identifier of the Dyad link protocol, version 1.
pub const ALPN: &[u8] = b"dyad/1";

/// Server name sent in the TLS SNI extension; certificates are pinned, so it is not checked.
pub(crate) const SERVER_NAME: &str = "dyad-peer";

/// The certificates one side accepts, and what the verifier saw when it refused one.
#[derive(Debug)]
pub(crate) struct Pins {
    pins: Vec<PeerCert>,
    provider: Arc<CryptoProvider>,
    refused: Mutex<Option<Fingerprint>>,
}

impl Pins {
    fn new(pins: Vec<PeerCert>, provider: Arc<CryptoProvider>) -> Arc<Self> {
        Arc::new(Self {
            pins,
            provider,
            refused: Mutex::new(None),
        })
    }

    fn check(&self, end_entity: &CertificateDer<'_>) -> std::result::Result<(), rustls::Error> {
        if self
            .pins
            .iter()
            .any(|p| p.der().as_ref() == end_entity.as_ref())
        {
            return Ok(());
        }
        let got = Fingerprint::of(end_entity);
        *self.refused.lock().expect("pins lock") = Some(got);
        Err(rustls::Error::InvalidCertificate(
            rustls::CertificateError::ApplicationVerificationFailure,
        ))
    }

    /// The fingerprint of a certificate the verifier refused, if it refused one.
    pub(crate) fn refused(&self) -> Option<Fingerprint> {
        *self.refused.lock().expect("pins lock")
    }

    /// The error to report after a failed handshake: a pin mismatch if the verifier refused a
    /// certificate, otherwise `other`.
    pub(crate) fn explain(
        &self,
        addr: std::net::SocketAddr,
        other: impl FnOnce() -> TransportError,
    ) -> TransportError {
        match self.refused() {
            Some(got) => TransportError::PeerCertificateMismatch {
                addr,
                expected_fingerprints: self.fingerprints(),
                got_fingerprint: got,
            },
            None => other(),
        }
    }

    pub(crate) fn fingerprints(&self) -> Vec<Fingerprint> {
        self.pins.iter().map(PeerCert::fingerprint).collect()
    }

    fn verify_tls13(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn tls12_refused() -> rustls::Error {
    rustls::Error::PeerIncompatible(rustls::PeerIncompatible::Tls13RequiredForQuic)
}

/// Verifies the listener's certificate against the pin (connecting side).
#[derive(Debug)]
struct PinnedServer(Arc<Pins>);

impl ServerCertVerifier for PinnedServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        self.0.check(end_entity)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        Err(tls12_refused())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.schemes()
    }
}

/// Verifies a connecting peer's certificate against the pins (listening side).
#[derive(Debug)]
struct PinnedClient(Arc<Pins>);

impl ClientCertVerifier for PinnedClient {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> std::result::Result<ClientCertVerified, rustls::Error> {
        self.0.check(end_entity)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        Err(tls12_refused())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.schemes()
    }
}

fn cfg_err(source: rustls::Error) -> TransportError {
    TransportError::TlsConfig { source }
}

/// A client configuration presenting `me` and accepting only `peer`; returns the pin record too.
pub(crate) fn client_config(
    me: &Identity,
    peer: &PeerCert,
) -> Result<(rustls::ClientConfig, Arc<Pins>)> {
    let provider = provider();
    let pins = Pins::new(vec![peer.clone()], provider.clone());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(cfg_err)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedServer(pins.clone())))
        .with_client_auth_cert(vec![me.certificate().der().clone()], me.private_key())
        .map_err(cfg_err)?;
    cfg.alpn_protocols = vec![ALPN.to_vec()];
    cfg.enable_early_data = false;
    Ok((cfg, pins))
}

/// A server configuration presenting `me` and requiring one of `peers`.
pub(crate) fn server_config(
    me: &Identity,
    peers: &[PeerCert],
) -> Result<(rustls::ServerConfig, Arc<Pins>)> {
    let provider = provider();
    let pins = Pins::new(peers.to_vec(), provider.clone());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(cfg_err)?
        .with_client_cert_verifier(Arc::new(PinnedClient(pins.clone())))
        .with_single_cert(vec![me.certificate().der().clone()], me.private_key())
        .map_err(cfg_err)?;
    cfg.alpn_protocols = vec![ALPN.to_vec()];
    cfg.max_early_data_size = 0;
    Ok((cfg, pins))
}

/// Checks the negotiated ALPN protocol.
pub(crate) fn check_alpn(addr: std::net::SocketAddr, got: Option<&[u8]>) -> Result<()> {
    if got == Some(ALPN) {
        return Ok(());
    }
    Err(TransportError::AlpnMismatch {
        addr,
        expected: String::from_utf8_lossy(ALPN).into_owned(),
        got: got.map(|g| String::from_utf8_lossy(g).into_owned()),
    })
}

/// The pinned certificate the peer presented (the handshake accepted only pinned ones).
pub(crate) fn presented(
    addr: std::net::SocketAddr,
    certs: Option<&[CertificateDer<'_>]>,
) -> Result<PeerCert> {
    match certs.and_then(|c| c.first()) {
        Some(c) => Ok(PeerCert::from_der(c.to_vec())),
        None => Err(TransportError::Handshake {
            addr,
            reason: "peer presented no certificate".into(),
        }),
    }
}
