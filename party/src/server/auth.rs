//! Client authentication: TLS 1.3 where the party presents its pinned certificate and the client
//! presents any self-signed certificate (its possession of the key is verified in the handshake);
//! the client is then admitted by the certificate's SHA-256 fingerprint or by a per-party
//! credential derived from its bearer token.
//!
//! # Security model
//!
//! The two parties are semi-honest (they follow the protocol but are curious about what they
//! see) and do not collude; the client trusts each party only with what it sends that party.
//! A party must therefore never receive anything that would let it pass as the client at the
//! other party: with the client's admission at P1, a curious P0 could `Reveal` a model it
//! coordinated and reconstruct it from both shares alone.
//!
//! * **Certificate clients** prove possession of their private key in the TLS handshake; a
//!   party sees only the certificate and a handshake signature bound to that session, which
//!   authenticate nowhere else.
//! * **Token clients** hold a secret token `T` and never send it. To party `i` they send
//!   `K_i = HMAC-SHA256(T, "dyad client v1" || F_i)` ([`derive_credential`]), where `F_i` is the
//!   SHA-256 fingerprint of party `i`'s certificate as the client pins it. Since the client only
//!   completes the handshake with the holder of that certificate's key, `K_i` reaches party `i`
//!   and nobody else. Party `i` registers `SHA-256(K_i)` ([`credential_sha256`], printed by
//!   `party hash-token`) and compares digests in constant time.
//!
//! What each party learns: party `i` sees `K_i` on every connection of the client (and stores
//! only its hash). HMAC-SHA256 is a pseudo-random function keyed by `T`, so `K_i` reveals nothing
//! about `K_{1-i}`: replaying `K_i` (or anything else it received) at the other party fails,
//! because that party registered the hash of a different value. Its configuration file holds
//! `SHA-256(K_i)`, from which `K_i` cannot be recovered. The token must be random and long (e.g.
//! `openssl rand -hex 32`): a party holding `K_i` can test guesses of `T` offline.
//!
//! The credential is not bound to the TLS session: a party can replay its own `K_i` at itself,
//! which gives it nothing it does not have. Registrations of the raw token's hash
//! (`token_sha256`, before per-party credentials) are refused when the configuration is loaded.

use super::config::AllowedClient;
use crate::proto::Credential;
use crate::transport::{tls, Fingerprint, Identity};
use hmac::{Hmac, Mac};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use sha2::Sha256;
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
        // Admission is decided after the handshake by fingerprint or credential.
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

/// Domain-separation label of the credential derivation (prefixed to the party's fingerprint).
pub const CREDENTIAL_LABEL: &[u8] = b"dyad client v1";

/// The credential a token client sends to the party whose pinned certificate has fingerprint
/// `party`: `K = HMAC-SHA256(token, CREDENTIAL_LABEL || party)`.
pub fn derive_credential(token: &str, party: &Fingerprint) -> Credential {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(token.as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(CREDENTIAL_LABEL);
    mac.update(&party.0);
    Credential(mac.finalize().into_bytes().into())
}

/// The value party `party` registers for a token client (`credential_sha256` in
/// `[[clients.allow]]`): SHA-256 of [`derive_credential`], 64 lowercase hex digits.
pub fn credential_sha256(token: &str, party: &Fingerprint) -> String {
    hex::encode(digest(&derive_credential(token, party)))
}

fn digest(credential: &Credential) -> [u8; 32] {
    crate::store::sha256(&credential.0)
}

/// The registered client admitted by `fingerprint` or `credential`, if any.
pub fn admit<'a>(
    allow: &'a [AllowedClient],
    fingerprint: &Fingerprint,
    credential: Option<&Credential>,
) -> Option<&'a AllowedClient> {
    let fp = fingerprint.to_string().to_lowercase();
    let by_fp = allow.iter().find(|c| {
        c.fingerprint
            .as_deref()
            .is_some_and(|f| f.to_lowercase().replace(':', "") == fp.replace(':', ""))
    });
    by_fp.or_else(|| {
        let h = digest(credential?);
        allow.iter().find(|c| {
            c.credential_sha256
                .as_deref()
                .and_then(|t| hex::decode(t).ok())
                .is_some_and(|t| constant_time_eq(&t, &h))
        })
    })
}

/// Equality whose time depends on the lengths only, not on where the bytes differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    a.len() == b.len() && std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const P0: Fingerprint = Fingerprint([0xa0; 32]);
    const P1: Fingerprint = Fingerprint([0xa1; 32]);

    fn token_client(name: &str, token: &str, party: &Fingerprint) -> AllowedClient {
        AllowedClient {
            name: name.into(),
            credential_sha256: Some(credential_sha256(token, party)),
            ..AllowedClient::default()
        }
    }

    #[test]
    fn fingerprints_and_credentials_admit_only_registered_clients() {
        let allow = vec![
            AllowedClient {
                name: "alice".into(),
                fingerprint: Some(Fingerprint([1; 32]).to_string()),
                ..AllowedClient::default()
            },
            token_client("bob", "s3cret", &P0),
        ];
        let other = Fingerprint([2; 32]);
        let bob = derive_credential("s3cret", &P0);
        assert_eq!(
            admit(&allow, &Fingerprint([1; 32]), None).unwrap().name,
            "alice"
        );
        assert_eq!(admit(&allow, &other, Some(&bob)).unwrap().name, "bob");
        let wrong = derive_credential("wrong", &P0);
        assert!(admit(&allow, &other, Some(&wrong)).is_none());
        assert!(admit(&allow, &other, None).is_none());
    }

    #[test]
    fn credentials_are_deterministic_and_differ_per_party_and_token() {
        let k0 = derive_credential("s3cret", &P0);
        assert_eq!(k0, derive_credential("s3cret", &P0));
        assert_ne!(k0, derive_credential("s3cret", &P1));
        assert_ne!(k0, derive_credential("s3cres", &P0));
        assert_ne!(k0.0.as_slice(), b"s3cret".as_slice());
        // K = HMAC-SHA256(token, label || fingerprint), written out (RFC 2104, a key shorter
        // than the 64-byte block): SHA-256((key ^ opad) || SHA-256((key ^ ipad) || message)).
        let pad = |byte: u8| {
            let mut k = [0u8; 64];
            k[..6].copy_from_slice(b"s3cret");
            k.map(|b| b ^ byte)
        };
        let inner = crate::store::sha256(&[&pad(0x36)[..], CREDENTIAL_LABEL, &P0.0].concat());
        let outer = crate::store::sha256(&[&pad(0x5c)[..], &inner].concat());
        assert_eq!(k0.0, outer);
        assert_eq!(
            credential_sha256("s3cret", &P0),
            hex::encode(crate::store::sha256(&k0.0))
        );
    }

    #[test]
    fn a_credential_for_one_party_is_refused_at_the_other() {
        // Each party registers the hash of its own credential.
        let at_p0 = [token_client("alice", "s3cret", &P0)];
        let at_p1 = [token_client("alice", "s3cret", &P1)];
        let stranger = Fingerprint([9; 32]);
        let k0 = derive_credential("s3cret", &P0);
        let k1 = derive_credential("s3cret", &P1);
        assert!(admit(&at_p0, &stranger, Some(&k0)).is_some());
        assert!(admit(&at_p1, &stranger, Some(&k1)).is_some());
        assert!(admit(&at_p1, &stranger, Some(&k0)).is_none());
        assert!(admit(&at_p0, &stranger, Some(&k1)).is_none());
    }

    #[test]
    fn old_raw_token_hashes_are_refused() {
        // The old registration: SHA-256 of the raw token. A hash of the raw token in the new
        // field matches no credential, and the old field never admits.
        let raw = hex::encode(crate::store::sha256(b"s3cret"));
        let k0 = derive_credential("s3cret", &P0);
        let stranger = Fingerprint([9; 32]);
        let misfiled = [AllowedClient {
            name: "alice".into(),
            credential_sha256: Some(raw.clone()),
            ..AllowedClient::default()
        }];
        assert!(admit(&misfiled, &stranger, Some(&k0)).is_none());
        let old = [AllowedClient {
            name: "alice".into(),
            legacy_token_sha256: Some(raw.clone()),
            ..AllowedClient::default()
        }];
        assert!(admit(&old, &stranger, Some(&k0)).is_none());
        // ... and a configuration that still has one is refused at load, naming the fix.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("party.toml");
        let with = |entry: &str| {
            let t = super::super::config::template(1);
            let t = t.replace("[limits]", &format!("{entry}\n[limits]"));
            std::fs::write(&path, t).unwrap();
            super::super::config::Config::load(&path)
        };
        let e = with(&format!(
            "[[clients.allow]]\nname = \"alice\"\ntoken_sha256 = \"{raw}\""
        ))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("token_sha256")
                && e.contains("party hash-token TOKEN --config")
                && e.contains("credential_sha256")
                && e.contains("party.toml"),
            "{e}"
        );
        let e = with("[[clients.allow]]\nname = \"alice\"\ncredential_sha256 = \"abc\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"abc\"") && e.contains("64 hex digits"), "{e}");
        let ok = format!("[[clients.allow]]\nname = \"alice\"\ncredential_sha256 = \"{raw}\"");
        assert_eq!(with(&ok).unwrap().clients.allow.len(), 1);
    }

    #[test]
    fn debug_does_not_print_credentials() {
        let k = derive_credential("s3cret", &P0);
        let hello = crate::proto::ClientHello {
            credential: Some(k.clone()),
        };
        let dbg = format!("{hello:?}");
        assert!(
            dbg.contains("redacted") && !dbg.contains(&hex::encode(&k.0[..4])),
            "{dbg}"
        );
    }
}
