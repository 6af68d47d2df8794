//! Messages of the inference endpoint (carried inside [`crate::proto::ClientRequest::Inference`]
//! and [`crate::proto::Reply::Inference`]).
//!
//! ```text
//! client → party  Inference(ModelInfo { model })
//! party  → client Inference(ModelInfo(info))                  parameters, layout, steps, classes
//! client → party  Inference(OpenSession { model, key_lens, public_key_len })
//!                                                             relin key, one Galois key each,
//!                                                             public key at the output level
//! party  → client Inference(Ready) | Error                    refused before any key byte moves
//! client → party  raw frames: each key's bytes, then the public key's, ≤ UPLOAD_CHUNK per frame
//! party  → client Inference(SessionOpened { session, .. }) | Error
//! client → party  Inference(Infer { session, ct_lens })       input ciphertexts
//! party  → client Inference(Ready) | Error                    (Forbidden for another client)
//! client → party  raw frames: each ciphertext's bytes
//! party  → client Inference(Logits { ct_lens, .. }), raw frames of the logit ciphertexts
//! client → party  Inference(CloseSession { session })
//! party  → client Inference(Closed) | Error
//! ```
//!
//! Every key and ciphertext travels in the `ckks` serialization (seeded where possible), which
//! the party validates against the model's parameters with the declared length as size limit.
//! The secret key never leaves the client. The public key (restricted to the logits' level
//! `ModelInfo::output_level`, seeded: 32 bytes plus one limb) lets the party re-randomize the
//! logit ciphertexts before it returns them (`hegcn::sanitize`): their `c1` is then a fresh RLWE
//! sample, not a function of the client's keys and the weights, and their noise is flooded.

use crate::ids::EntryId;
use serde::{Deserialize, Serialize};

/// Most keys one session upload may declare (the relinearization key and Galois keys).
pub const MAX_SESSION_KEYS: usize = 1024;
/// Most ciphertexts one inference request may declare.
pub const MAX_REQUEST_CTS: usize = 4096;

/// A request to the inference endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum InferRequest {
    /// Names of the served models.
    ListModels,
    /// What a client needs to make keys and encrypt for `model`.
    ModelInfo {
        /// Served model name.
        model: String,
    },
    /// Opens a session for `model`: after [`InferReply::Ready`] the client sends the serialized
    /// relinearization key (`key_lens[0]` bytes), then Galois keys (`key_lens[1..]`, each
    /// one serialized `ckks::GaloisKeys`) and then its public key as raw frames.
    OpenSession {
        /// Served model name.
        model: String,
        /// Byte length of each key object, relinearization key first.
        key_lens: Vec<u64>,
        /// Byte length of the serialized `ckks::PublicKey` at [`ModelInfo::output_level`],
        /// sent after the key objects.
        public_key_len: u64,
    },
    /// Evaluates the model on encrypted input: after [`InferReply::Ready`] the client sends
    /// the input ciphertexts (`ct_lens` bytes each, in layout order) as raw frames.
    Infer {
        /// The session (bound to the client that opened it).
        session: EntryId,
        /// Byte length of each serialized input ciphertext.
        ct_lens: Vec<u64>,
    },
    /// Ends a session and drops its keys.
    CloseSession {
        /// The session.
        session: EntryId,
    },
}

/// Everything a client needs to encrypt for a served model (no model weights).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// Served model name.
    pub name: String,
    /// Name of the CKKS parameter set: one of `ckks::presets::ALL_128BIT`, or the name of the
    /// tailored set in [`ModelInfo::params`] (the client rebuilds either).
    pub preset: String,
    /// `log2(N)` of the parameters.
    pub log_n: u32,
    /// The ciphertext prime chain `q_0..q_L` (the client checks it against the preset).
    pub q_primes: Vec<u64>,
    /// The special primes.
    pub p_primes: Vec<u64>,
    /// Level at which the input is encrypted (the model's multiplicative depth).
    pub input_level: u32,
    /// Level of the returned logit ciphertexts: the session's public key is sent at this level.
    pub output_level: u32,
    /// Standard deviation of the error the party's noise flood adds to every returned logit.
    pub flood_sd: f64,
    /// Slot layout of the input ciphertexts.
    pub input_layout: hegcn::Layout,
    /// Client-side input normalisation `x ↦ scale[c, v]·x + shift[c, v]`, row-major `(C, V)`.
    pub input_affine: Option<(Vec<f64>, Vec<f64>)>,
    /// Rotation steps whose Galois keys the session needs (left rotations).
    pub rotation_steps: Vec<i64>,
    /// For each of `rotation_steps`, the highest level the party rotates by it at: the client
    /// makes that key restricted to this level (`ckks::KeyGenerator::galois_keys_at_level`), a
    /// fraction of a whole key for steps used only low in the circuit; a key of a higher level
    /// is accepted and cut on receipt.
    pub rotation_levels: Vec<u32>,
    /// Class names (one per class; generated names when the model file has none).
    pub class_names: Vec<String>,
    /// Largest total key upload the party accepts for one session (bytes).
    pub max_key_bytes: u64,
    /// Idle seconds after which a session expires.
    pub session_ttl_s: u64,
    /// The parameter set as a spec, when the party serves the model under parameters tailored
    /// to its depth and shape (`hegcn::params`); `None` for a named preset (older parties).
    #[serde(default)]
    pub params: Option<hegcn::ParamSpec>,
    /// The dense single-pose layout (`hegcn::dense`), when the party serves the model in it
    /// (models of one frame and one person): the client then encrypts one ciphertext holding
    /// the replicated state, and `input_layout` announces zero slots, which clients that do
    /// not know this field refuse (`params_for`: "layout slots") instead of encrypting in the
    /// wrong layout. `None` for the packed layouts and from older parties.
    #[serde(default)]
    pub dense: Option<hegcn::DenseLayout>,
    /// The CNN's architecture and layout, when the model is an MNIST-style CNN
    /// (`ml::models::cnn`, `hecnn`); `input_layout` then announces zero slots (it describes
    /// ST-GCN inputs only) and `input_affine` is `None`. `None` for ST-GCN models.
    #[serde(default)]
    pub cnn: Option<CnnInfo>,
}

/// What a client needs to encrypt for a served CNN: its public architecture (shapes, no
/// weights) and the layout the party evaluates it in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CnnInfo {
    /// The layout: `hecnn::LayoutKind::Lola` (one image as one ciphertext per kernel tap) or
    /// `hecnn::LayoutKind::Batch` (CryptoNets: one ciphertext per pixel, image `j` in slot `j`;
    /// the logits come back as one ciphertext per class, image `j`'s in slot `j`) or
    /// `hecnn::LayoutKind::Matrix` (a batch as one data matrix in one ciphertext, image `n` in
    /// block `n`; the logits come back in one ciphertext, image `n`'s class `c` in slot
    /// `n·block + c`).
    pub layout: hecnn::LayoutKind,
    /// The architecture (`side`, `kernel`, `stride`, `pad`, `maps`, `hidden`, `classes`).
    pub spec: ml::models::cnn::CnnSpec,
}

impl CnnInfo {
    /// Input ciphertexts of a request: one per kernel tap (LoLa), per pixel (batch), or one
    /// (matrix).
    pub fn input_cts(&self) -> usize {
        match self.layout {
            hecnn::LayoutKind::Batch => self.spec.pixels(),
            hecnn::LayoutKind::Matrix => 1,
            _ => self.spec.taps(),
        }
    }
}

impl ModelInfo {
    /// Every rotation step with the level its key is made at (`rotation_levels`; the input
    /// level where a party announced none for a step).
    pub fn rotation_keys(&self) -> Vec<(i64, usize)> {
        self.rotation_steps
            .iter()
            .enumerate()
            .map(|(i, &s)| {
                let l = self
                    .rotation_levels
                    .get(i)
                    .copied()
                    .unwrap_or(self.input_level);
                (s, l as usize)
            })
            .collect()
    }

    /// Input ciphertexts a request carries: [`CnnInfo::input_cts`] for a CNN, one in the dense
    /// layout, the packed layout's count otherwise.
    pub fn input_cts(&self) -> usize {
        match (&self.cnn, &self.dense) {
            (Some(c), _) => c.input_cts(),
            (None, Some(_)) => 1,
            (None, None) => self.input_layout.num_cts(),
        }
    }
}

/// A reply of the inference endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum InferReply {
    /// Served model names.
    Models(Vec<String>),
    /// The description of a served model.
    ModelInfo(Box<ModelInfo>),
    /// Send the announced bytes now.
    Ready,
    /// The keys are validated and installed.
    SessionOpened {
        /// The new session.
        session: EntryId,
        /// Idle seconds until it expires.
        ttl_s: u64,
    },
    /// Encrypted logits follow as raw frames (`ct_lens` bytes each).
    Logits {
        /// Byte length of each logit ciphertext.
        ct_lens: Vec<u64>,
        /// `(ciphertext, slot)` of each class score.
        positions: Vec<(u32, u32)>,
        /// Seconds the party spent on the homomorphic forward pass and the sanitization of the
        /// logits (re-randomization and noise flood).
        eval_seconds: f64,
        /// Homomorphic operations of the forward pass (the sanitization is not counted).
        counts: ckks::OpCounts,
    },
    /// The session is closed.
    Closed,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::MAX_CONTROL_FRAME;
    use ml::models::cnn::CnnSpec;

    /// A CNN's announcement crosses the link (bincode) intact, for plain and FFConv specs in
    /// every layout: bincode has no optional fields, so a field the spec skipped when absent
    /// would shorten the message and the client would fail at its end.
    #[test]
    fn cnn_announcements_round_trip_on_the_wire() {
        let specs = [
            CnnSpec::cryptonets(),
            CnnSpec::wide(),
            CnnSpec::ffconv(8, 16),
        ];
        let layouts = [
            hecnn::LayoutKind::Lola,
            hecnn::LayoutKind::Batch,
            hecnn::LayoutKind::FfConv,
        ];
        for spec in specs {
            for layout in layouts {
                let info = CnnInfo {
                    layout,
                    spec: spec.clone(),
                };
                let b = mpc::net::encode_message(&info).unwrap();
                let back: CnnInfo = crate::proto::decode(&b, MAX_CONTROL_FRAME).unwrap();
                assert_eq!(back, info);
            }
        }
    }
}
