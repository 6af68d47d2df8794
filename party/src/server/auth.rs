//! Client authentication: TLS 1.3 where the party presents its pinned certificate and the client
//! presents any self-signed certificate (its possession of the key is verified in the handshake);
//! the client is then admitted by the certificate's SHA-256 fingerprint or by a bearer token
//! whose SHA-256 is registered (RFC 6750-style tokens, compared by digest).

use super::config::AllowedClient;
use crate::transport::{tls, Fingerprint, Identity};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use std::sync::Arc;

/// ALPN of the client protocol (distinct from the peer link's, so the ports cannot be confused).
pub const CLIENT_ALPN: &[u8] = b"dyad-client/1";

#[derive(Debug)]
struct AnyClientCert(Arc<rustls::crypto::CryptoProvider>);

impl ClientCertVerifier for AnyClientCert {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        // Admission is decided after the handshake by fingerprint or token.
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls12NotOffered,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The TLS server configuration of the client endpoint.
///
/// # Errors
/// rustls configuration errors.
pub fn server_config(me: &Identity) -> Result<rustls::ServerConfig, rustls::Error> {
    let provider = tls::provider();
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(Arc::new(AnyClientCert(provider)))
        .with_single_cert(vec![me.certificate().der().clone()], me.private_key())?;
    cfg.alpn_protocols = vec![CLIENT_ALPN.to_vec()];
    cfg.max_early_data_size = 0;
    Ok(cfg)
}

/// SHA-256 of a token, hex (what the configuration stores).
pub fn hash_token(token: &str) -> String {
    hex::encode(crate::store::sha256(token.as_bytes()))
}

/// The registered client admitted by `fingerprint` or `token`, if any.
pub fn admit<'a>(
    allow: &'a [AllowedClient],
    fingerprint: &Fingerprint,
    token: Option<&str>,
) -> Option<&'a AllowedClient> {
    let fp = fingerprint.to_string().to_lowercase();
    let by_fp = allow.iter().find(|c| {
        c.fingerprint
            .as_deref()
            .is_some_and(|f| f.to_lowercase().replace(':', "") == fp.replace(':', ""))
    });
    by_fp.or_else(|| {
        let h = hash_token(token?);
        allow.iter().find(|c| {
            c.token_sha256
                .as_deref()
                .is_some_and(|t| constant_time_eq(t.to_lowercase().as_bytes(), h.as_bytes()))
        })
    })
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_and_tokens_admit_only_registered_clients() {
        let allow = vec![
            AllowedClient {
                name: "alice".into(),
                fingerprint: Some(Fingerprint([1; 32]).to_string()),
                token_sha256: None,
            },
            AllowedClient {
                name: "bob".into(),
                fingerprint: None,
                token_sha256: Some(hash_token("s3cret")),
            },
        ];
        let other = Fingerprint([2; 32]);
        assert_eq!(
            admit(&allow, &Fingerprint([1; 32]), None).unwrap().name,
            "alice"
        );
        assert_eq!(admit(&allow, &other, Some("s3cret")).unwrap().name, "bob");
        assert!(admit(&allow, &other, Some("wrong")).is_none());
        assert!(admit(&allow, &other, None).is_none());
    }
}
