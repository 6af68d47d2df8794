//! The client's keys for one design's run: secret and public key, and the server's evaluator
//! holding the relinearization key and the Galois keys of the layout's rotation steps, with
//! the key-generation time and the key sizes for the report. One place for what every
//! single-image and matrix design does before its accuracy run.

use crate::report::Report;
use anyhow::Result;
use ckks::{CkksParams, Evaluator, KeyGenerator, PublicKey, SecretKey};
use std::time::Instant;

/// A client's keys and the server's evaluator built from them.
pub struct ClientKeys {
    /// The client's secret key.
    pub sk: SecretKey,
    /// The client's public key.
    pub pk: PublicKey,
    /// The server's evaluator (relinearization and Galois keys).
    pub eval: Evaluator,
    /// Seconds of key generation.
    pub keygen_s: f64,
    /// Galois keys generated (one per rotation step).
    pub galois_keys: usize,
    /// Serialized bytes of the public, relinearization and Galois keys.
    pub bytes: [usize; 3],
}

impl std::fmt::Debug for ClientKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientKeys")
            .field("galois_keys", &self.galois_keys)
            .field("bytes", &self.bytes)
            .finish_non_exhaustive()
    }
}

impl ClientKeys {
    /// Keys under `params` with Galois keys for `steps`.
    ///
    /// # Errors
    /// CKKS key generation or serialization errors.
    pub fn generate(params: &CkksParams, steps: &[i64]) -> Result<Self> {
        let t = Instant::now();
        let mut kg = KeyGenerator::new(params);
        let sk = kg.secret_key();
        let pk = kg.public_key(&sk)?;
        let rk = kg.relin_key(&sk)?;
        let gk = kg.galois_keys(&sk, steps, false)?;
        let keygen_s = t.elapsed().as_secs_f64();
        let bytes = [
            pk.to_bytes()?.len(),
            rk.to_bytes(params)?.len(),
            gk.to_bytes(params)?.len(),
        ];
        let galois_keys = gk.len();
        let eval = Evaluator::new(params)
            .with_relin_key(rk)
            .with_galois_keys(gk);
        Ok(Self {
            sk,
            pk,
            eval,
            keygen_s,
            galois_keys,
            bytes,
        })
    }

    /// Writes `<prefix>.keygen_s`, `.galois_keys`, `.public_key_bytes`, `.relin_key_bytes`
    /// and `.galois_key_bytes`.
    pub fn report(&self, prefix: &str, report: &mut Report) {
        let named = [
            ("keygen_s", self.keygen_s),
            ("galois_keys", self.galois_keys as f64),
            ("public_key_bytes", self.bytes[0] as f64),
            ("relin_key_bytes", self.bytes[1] as f64),
            ("galois_key_bytes", self.bytes[2] as f64),
        ];
        for (k, v) in named {
            report.metric(format!("{prefix}.{k}"), v);
        }
    }
}
