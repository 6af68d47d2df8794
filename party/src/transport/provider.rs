//! The rustls crypto provider every transport uses (ring, TLS 1.3 suites with AES-128-GCM
//! first).

use rustls::crypto::CryptoProvider;
use std::sync::Arc;

/// The ring crypto provider with AES-128-GCM first.
pub fn provider() -> Arc<CryptoProvider> {
    let mut p = rustls::crypto::ring::default_provider();
    p.cipher_suites = vec![
        rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256,
        rustls::crypto::ring::cipher_suite::TLS13_AES_256_GCM_SHA384,
        rustls::crypto::ring::cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
    ];
    Arc::new(p)
}
