//! Encrypted ST-GCN inference as a service (CryptoGCN, Ran et al., NeurIPS 2022: the client
//! encrypts a skeleton sequence under CKKS, the server evaluates the network on ciphertexts and
//! returns encrypted class scores only the client can decrypt).
//!
//! * [`msg`]: the messages of the inference endpoint.
//! * this module: the client's side of the math — rebuild and check the CKKS parameters a party
//!   announces ([`params_for`]), generate the evaluation keys one serialized object at a time on
//!   a background thread ([`generate_keys`]), pack and encrypt an input sequence in the model's
//!   slot layout ([`encrypt_input`]), decrypt the logits ([`decrypt_logits`]).
//! * [`input`]: reading a sequence from CSV or NPY with errors that name file, line and value.
//! * [`cnn`] and [`image`]: the same for the CNN models (`hecnn`): checking the announced
//!   architecture, encrypting one image in the LoLa layout; reading a digit from PNG or NPY.
//! * [`client`]: the async driver of one inference session over a [`crate::client::Client`].
//!
//! The server side lives in [`crate::server::infer`]. The secret key is made by the client and
//! never serialized onto the network; inputs are encrypted with it symmetrically (the seeded
//! form halves their size). The client sends a public key at the logits' level only, with which
//! the party sanitizes every reply (see [`msg`] and `hegcn::sanitize`).

pub mod client;
pub mod cnn;
pub mod image;
pub mod input;
pub mod msg;

pub use msg::{InferReply, InferRequest, ModelInfo};

use ckks::{Ciphertext, CkksParams, Encoder, KeyGenerator, SecretKey};
use hegcn::Layout;
use ndarray::ArrayView4;
use std::sync::Arc;

/// Largest number of logical input entries `C·T·V·M` a client accepts in a layout.
pub const MAX_INPUT_ENTRIES: usize = 1 << 24;

/// Errors of the client side of inference.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InferError {
    /// A CKKS operation failed.
    #[error("CKKS: {0}")]
    Ckks(#[from] ckks::CkksError),
    /// The connection or the party failed.
    #[error(transparent)]
    Client(#[from] crate::client::ClientError),
    /// The party named a preset this client does not know as a 128-bit preset.
    #[error("the party uses preset {name:?}, which is not a 128-bit preset this client knows")]
    UnknownPreset {
        /// The announced name.
        name: String,
    },
    /// The announced parameters or layout disagree with the preset or with themselves.
    #[error("model info: {what}: expected {expected}, found {found}")]
    BadInfo {
        /// Which field.
        what: &'static str,
        /// Expected value.
        expected: u64,
        /// Announced value.
        found: u64,
    },
    /// An input does not have the model's shape.
    #[error("input {what}: expected {expected}, found {found}")]
    Shape {
        /// Which dimension.
        what: &'static str,
        /// Expected size.
        expected: usize,
        /// Actual size.
        found: usize,
    },
    /// Reading an input file failed.
    #[error(transparent)]
    Input(#[from] input::InputError),
    /// Reading an image failed.
    #[error(transparent)]
    Image(#[from] image::ImageError),
    /// The CNN client refused an architecture or an image.
    #[error(transparent)]
    Cnn(#[from] hecnn::HeCnnError),
    /// The party serves a CNN in a layout this client does not encrypt for.
    #[error("the party serves the model in the {layout} layout; this client encrypts for lola")]
    UnsupportedLayout {
        /// The announced layout.
        layout: &'static str,
    },
    /// The key generation thread ended early.
    #[error("key generation stopped: {reason}")]
    KeyGeneration {
        /// Why.
        reason: String,
    },
}

impl From<mpc::MpcError> for InferError {
    fn from(e: mpc::MpcError) -> Self {
        InferError::Client(crate::client::ClientError::Channel(e))
    }
}

/// Result of the client side of inference.
pub type Result<T, E = InferError> = std::result::Result<T, E>;

/// Rebuilds the parameters `info` announces — a preset from the client's own list of 128-bit
/// presets, or a tailored set from its spec with the client's own builder, which refuses any
/// set above the 128-bit bound — and checks the announced chain and layout against them (a
/// party cannot make the client encrypt under parameters weaker than 128-bit).
///
/// # Errors
/// [`InferError::UnknownPreset`], [`InferError::BadInfo`]; CKKS errors for a spec the builder
/// refuses (insecure or invalid).
pub fn params_for(info: &ModelInfo) -> Result<CkksParams> {
    let params = match &info.params {
        Some(spec) => {
            if spec.name() != info.preset {
                return Err(InferError::UnknownPreset {
                    name: format!("{} (its spec is {})", info.preset, spec.name()),
                });
            }
            spec.build()?
        }
        None => ckks::presets::ALL_128BIT
            .iter()
            .find(|p| p.name == info.preset)
            .ok_or_else(|| InferError::UnknownPreset {
                name: info.preset.clone(),
            })?
            .build()?,
    };
    let bad = |what, expected: usize, found: usize| InferError::BadInfo {
        what,
        expected: expected as u64,
        found: found as u64,
    };
    if info.log_n != params.log_n().0 {
        return Err(bad(
            "log2(N)",
            params.log_n().0 as usize,
            info.log_n as usize,
        ));
    }
    if info.q_primes != params.q_primes() || info.p_primes != params.p_primes() {
        return Err(bad(
            "prime chain length",
            params.q_primes().len() + params.p_primes().len(),
            info.q_primes.len() + info.p_primes.len(),
        ));
    }
    if info.input_level as usize > params.max_level() {
        return Err(bad(
            "input level",
            params.max_level(),
            info.input_level as usize,
        ));
    }
    if info.output_level > info.input_level {
        return Err(bad(
            "output level (at most the input level)",
            info.input_level as usize,
            info.output_level as usize,
        ));
    }
    if let Some(cnn) = &info.cnn {
        cnn::check_cnn(info, cnn, &params)?;
        return Ok(params);
    }
    let (c, v) = match &info.dense {
        Some(d) => {
            check_dense(d, &params)?;
            (d.channels, d.nodes)
        }
        None => {
            check_layout(&info.input_layout, &params)?;
            (info.input_layout.channels, info.input_layout.nodes)
        }
    };
    if let Some((scale, shift)) = &info.input_affine {
        for (what, len) in [
            ("input scale entries", scale.len()),
            ("input shift entries", shift.len()),
        ] {
            if len != c * v {
                return Err(bad(what, c * v, len));
            }
        }
    }
    if info.class_names.is_empty() {
        return Err(bad("class count (at least)", 1, 0));
    }
    Ok(params)
}

/// Checks that every entry of `l` lands on a slot of a ciphertext (a malformed layout could
/// otherwise make the client allocate or index out of range).
fn check_layout(l: &Layout, params: &CkksParams) -> Result<()> {
    let bad = |what, expected: usize, found: usize| InferError::BadInfo {
        what,
        expected: expected as u64,
        found: found as u64,
    };
    if l.slots != params.slots() {
        return Err(bad("layout slots", params.slots(), l.slots));
    }
    if l.block == 0 || l.block > l.slots || !l.block.is_power_of_two() {
        return Err(bad("layout block (power of two ≤ slots)", l.slots, l.block));
    }
    let entries = [l.channels, l.frames, l.nodes, l.persons]
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d).filter(|_| d > 0));
    match entries {
        Some(n) if n <= MAX_INPUT_ENTRIES => {}
        _ => return Err(bad("input entries C·T·V·M", MAX_INPUT_ENTRIES, usize::MAX)),
    }
    let per = l.persons.checked_mul(l.frame_stride);
    let last = l
        .frames
        .checked_sub(1)
        .and_then(|t| t.checked_mul(l.dilation));
    match (per, last) {
        (Some(p), Some(t)) if p <= l.block && t < l.frame_stride => {}
        _ => return Err(bad("layout block (M·T_p)", l.block, usize::MAX)),
    }
    let cts = l.num_cts();
    if cts == 0 || cts > msg::MAX_REQUEST_CTS {
        return Err(bad("input ciphertexts", msg::MAX_REQUEST_CTS, cts));
    }
    // The largest block index any (c, v) uses must fit the ciphertext.
    let max_block = match l.packing {
        hegcn::Packing::Ama => l.blocks_per_ct(),
        hegcn::Packing::ChannelMajor => l.nodes,
    };
    if max_block.checked_mul(l.block).is_none_or(|s| s > l.slots) {
        return Err(bad("layout blocks × block size", l.slots, usize::MAX));
    }
    Ok(())
}

/// Checks an announced dense layout: a power-of-two period that divides the slots and holds
/// `V` nodes of `P ≥ C` slots each, an input repeat between `C` and `P` (a power of two), and a
/// bounded input.
fn check_dense(d: &hegcn::DenseLayout, params: &CkksParams) -> Result<()> {
    let bad = |what, expected: usize, found: usize| InferError::BadInfo {
        what,
        expected: expected as u64,
        found: found as u64,
    };
    if d.slots != params.slots() {
        return Err(bad("dense layout slots", params.slots(), d.slots));
    }
    if !d.period.is_power_of_two() || d.period > d.slots {
        return Err(bad(
            "dense period (power of two ≤ slots)",
            d.slots,
            d.period,
        ));
    }
    if !d.node_stride.is_power_of_two() || d.channels == 0 || d.channels > d.node_stride {
        return Err(bad(
            "dense node stride (power of two ≥ channels)",
            d.channels,
            d.node_stride,
        ));
    }
    if !d.input_repeat.is_power_of_two()
        || d.input_repeat < d.channels
        || d.input_repeat > d.node_stride
    {
        return Err(bad(
            "dense input repeat (power of two, C ≤ it ≤ node stride)",
            d.channels,
            d.input_repeat,
        ));
    }
    match d.nodes.checked_mul(d.node_stride) {
        Some(s) if d.nodes > 0 && s <= d.period => Ok(()),
        _ => Err(bad(
            "dense nodes × node stride (≤ period)",
            d.period,
            usize::MAX,
        )),
    }
}

/// Serialized evaluation keys streamed from a background generator: `lens[0]` is the
/// relinearization key, the rest one `GaloisKeys` object per rotation step; the public key at
/// the output level goes after them.
#[derive(Debug)]
pub struct KeyStream {
    /// Byte length of each object, in sending order.
    pub lens: Vec<u64>,
    /// The serialized public key at the model's output level (sent last).
    pub public_key: Vec<u8>,
    /// The objects, in order.
    pub rx: tokio::sync::mpsc::Receiver<Result<Vec<u8>>>,
}

impl KeyStream {
    /// Total bytes of all objects and the public key.
    pub fn total_bytes(&self) -> u64 {
        self.lens.iter().sum::<u64>() + self.public_key.len() as u64
    }
}

/// One Galois key per distinct Galois element of the rotation `keys` (step, level): element ↦
/// (one of its steps, the highest level of its steps); the identity left out. What a client
/// makes and what the serving party expects of a session.
pub fn keys_by_element(
    params: &CkksParams,
    keys: &[(i64, usize)],
) -> std::collections::BTreeMap<u64, (i64, usize)> {
    let mut out = std::collections::BTreeMap::new();
    for &(s, level) in keys {
        let g = ckks::galois_element_for_step(params, s);
        if g != 1 {
            let e = out.entry(g).or_insert((s, level));
            e.1 = e.1.max(level);
        }
    }
    out
}

/// Starts generating the session keys for `keys` (rotation step, level: `ModelInfo::rotation_keys`)
/// under `sk`: the relinearization key and one Galois key per distinct Galois element, each
/// restricted to its level (the highest of its steps'), serialized (seeded) one at a time on a
/// background thread so that at most a few keys are in memory at once, and the public key
/// restricted to `output_level`. The lengths follow from the parameters and levels
/// (`GaloisKeys::serialized_len_at_level`), so they are announced before any key is made.
///
/// # Errors
/// CKKS errors of the first keys; an `output_level` or key level above the parameters' top
/// level.
pub fn generate_keys(
    params: &CkksParams,
    sk: Arc<SecretKey>,
    keys: &[(i64, usize)],
    output_level: usize,
) -> Result<KeyStream> {
    let mut kg = KeyGenerator::new(params);
    let public_key = kg.public_key(&sk)?.at_level(output_level)?.to_bytes()?;
    let relin = kg.relin_key(&sk)?.to_bytes(params)?;
    let steps: Vec<(i64, usize)> = keys_by_element(params, keys).into_values().collect();
    if let Some(&(_, level)) = steps.iter().find(|&&(_, l)| l > params.max_level()) {
        return Err(ckks::CkksError::InvalidLevel {
            level,
            max: params.max_level(),
        }
        .into());
    }
    let mut lens = vec![relin.len() as u64];
    lens.extend(
        steps
            .iter()
            .map(|&(_, l)| ckks::GaloisKeys::serialized_len_at_level(params, l)),
    );
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    let params = params.clone();
    std::thread::spawn(move || {
        if tx.blocking_send(Ok(relin)).is_err() {
            return;
        }
        for &(s, level) in &steps {
            let k = kg
                .galois_keys_at_level(&sk, &[s], false, level)
                .and_then(|g| g.to_bytes(&params))
                .map_err(InferError::from);
            if tx.blocking_send(k).is_err() {
                return;
            }
        }
    });
    Ok(KeyStream {
        lens,
        public_key,
        rx,
    })
}

/// Packs one sample `(C, T, V, M)` in the announced layout after the model's input affine map
/// and encrypts every ciphertext symmetrically under `sk` at `info.input_level` with the default
/// scale; returns the serialized (seeded) ciphertexts in layout order.
///
/// # Errors
/// [`InferError::Shape`] for a sample of the wrong shape; CKKS errors.
pub fn encrypt_input(
    info: &ModelInfo,
    params: &CkksParams,
    sk: &SecretKey,
    x: ArrayView4<'_, f64>,
) -> Result<Vec<Vec<u8>>> {
    if let Some(d) = &info.dense {
        return encrypt_dense(info, d, params, sk, x);
    }
    let l = &info.input_layout;
    for (what, expected, found) in [
        ("channels C", l.channels, x.dim().0),
        ("frames T", l.frames, x.dim().1),
        ("joints V", l.nodes, x.dim().2),
        ("persons M", l.persons, x.dim().3),
    ] {
        if expected != found {
            return Err(InferError::Shape {
                what,
                expected,
                found,
            });
        }
    }
    let mut slots = vec![vec![0.0; l.slots]; l.num_cts()];
    for ((c, t, v, m), &e) in x.indexed_iter() {
        let y = match &info.input_affine {
            Some((scale, shift)) => scale[c * l.nodes + v] * e + shift[c * l.nodes + v],
            None => e,
        };
        let (ct, slot) = l.slot(c, t, v, m);
        slots[ct][slot] = y;
    }
    let encoder = Encoder::new(params);
    let level = info.input_level as usize;
    slots
        .iter()
        .map(|s| {
            let pt = encoder.encode(s, level, params.default_scale())?;
            Ok(sk.encrypt_symmetric(&pt)?.to_bytes(params)?)
        })
        .collect()
}

/// [`encrypt_input`] in the dense single-pose layout: one ciphertext holding the state
/// `(c, v)` at slot `v·P + c`, replicated over every period.
fn encrypt_dense(
    info: &ModelInfo,
    d: &hegcn::DenseLayout,
    params: &CkksParams,
    sk: &SecretKey,
    x: ArrayView4<'_, f64>,
) -> Result<Vec<Vec<u8>>> {
    for (what, expected, found) in [
        ("channels C", d.channels, x.dim().0),
        ("frames T", 1, x.dim().1),
        ("joints V", d.nodes, x.dim().2),
        ("persons M", 1, x.dim().3),
    ] {
        if expected != found {
            return Err(InferError::Shape {
                what,
                expected,
                found,
            });
        }
    }
    let mut flat = vec![0.0; d.channels * d.nodes];
    for ((c, _, v, _), &e) in x.indexed_iter() {
        let i = c * d.nodes + v;
        flat[i] = match &info.input_affine {
            Some((scale, shift)) => scale[i] * e + shift[i],
            None => e,
        };
    }
    let slots = d.pack(&flat).map_err(|_| InferError::Shape {
        what: "dense input entries C·V",
        expected: d.channels * d.nodes,
        found: flat.len(),
    })?;
    let pt =
        Encoder::new(params).encode(&slots, info.input_level as usize, params.default_scale())?;
    Ok(vec![sk.encrypt_symmetric(&pt)?.to_bytes(params)?])
}

/// Largest serialized size of a ciphertext under `params` (a full, unseeded ciphertext at the
/// top level plus framing), used as the per-object size limit on received ciphertexts.
pub fn max_ciphertext_bytes(params: &CkksParams) -> u64 {
    let words = 2 * params.n() as u64 * (params.max_level() as u64 + 1);
    words * 8 + 4096
}

/// Largest serialized size of a (seeded) public key at `level` under `params`, used as the
/// limit on the announced public key.
pub fn max_public_key_bytes(params: &CkksParams, level: usize) -> u64 {
    8 * params.n() as u64 * (level as u64 + 1) + 4096
}

/// Decrypts the logit ciphertexts and reads the class scores at `positions`.
///
/// # Errors
/// CKKS errors (wrong parameters, malformed bytes); [`InferError::BadInfo`] for a position
/// outside the ciphertexts.
pub fn decrypt_logits(
    params: &CkksParams,
    sk: &SecretKey,
    cts: &[Vec<u8>],
    positions: &[(u32, u32)],
) -> Result<Vec<f64>> {
    let dec = decrypt_slots(params, sk, cts)?;
    positions
        .iter()
        .map(|&(ct, slot)| {
            dec.get(ct as usize)
                .and_then(|d| d.get(slot as usize))
                .copied()
                .ok_or(InferError::BadInfo {
                    what: "logit position (ciphertexts)",
                    expected: dec.len() as u64,
                    found: ct as u64,
                })
        })
        .collect()
}

/// Decrypts and decodes serialized ciphertexts (each within the size of a ciphertext under
/// `params`) into their slot values.
///
/// # Errors
/// CKKS errors (wrong parameters, malformed bytes, another key).
pub(crate) fn decrypt_slots(
    params: &CkksParams,
    sk: &SecretKey,
    cts: &[Vec<u8>],
) -> Result<Vec<Vec<f64>>> {
    let encoder = Encoder::new(params);
    let limit = max_ciphertext_bytes(params);
    cts.iter()
        .map(|b| {
            let ct = Ciphertext::from_bytes_with_limit(b, params, limit)?;
            Ok(encoder.decode(&sk.decrypt(&ct)?))
        })
        .collect()
}

/// Indices of the `k` largest scores, best first.
pub fn top_k(scores: &[f64], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    idx.truncate(k);
    idx
}
