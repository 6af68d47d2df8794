//! The dense layout's client side (packing, encryption, decryption of the logits) and the
//! server's forward pass: per block graph conv, activation, temporal conv + residual,
//! activation; then the head (dense layer, node sum by rotations, bias, 0/1 logit mask).
//!
//! Security model: that of [`super`] (semi-honest server, the client holds the secret key).

use ckks::{Ciphertext, Evaluator, PublicKey, SecretKey};
use ndarray::ArrayView4;

use super::diag::{baby_steps, replicate, DiagMap};
use super::{DenseAct, DenseStgcn, SlotVector};
use crate::error::{HeGcnError, Result};
use crate::model::EncryptedLogits;
use std::sync::Arc;

/// Bits by which a linear map's output scale sits below `Δ` when an activation site follows
/// (the site's quadratic coefficients are then encoded at `≈ 2^(2·drop)` and its output is at
/// `Δ` again).
pub const PRE_ACT_SCALE_DROP: u32 = 13;

/// A stage of the dense forward pass, as [`DenseStgcn::forward_traced`] reports it (block
/// index inside).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Graph convolution (with its bias).
    Gcn(usize),
    /// The activation after the graph convolution (the input passes when it is pruned).
    Act1(usize),
    /// Temporal convolution and residual (with their bias).
    Tcn(usize),
    /// The activation closing the block.
    Act2(usize),
    /// The head's dense layer.
    HeadDense,
    /// The head's node sum and bias.
    NodeSum,
    /// The 0/1 logit mask.
    Mask,
}

impl DenseStgcn {
    /// The replicated slot vector of one sample `(C, T, V, M)` with `T = M = 1`, after the
    /// input affine map.
    ///
    /// # Errors
    /// [`HeGcnError::Shape`] for another shape.
    pub fn pack_input(&self, x: ArrayView4<'_, f64>) -> Result<Vec<f64>> {
        let l = &self.layout;
        let want = (l.channels, 1, l.nodes, 1);
        if x.dim() != want {
            let (c, t, v, m) = x.dim();
            return Err(HeGcnError::Shape {
                what: "dense input C·T·V·M (one frame, one person)",
                expected: l.channels * l.nodes,
                found: c * t * v * m,
            });
        }
        let flat: Vec<f64> = (0..l.channels)
            .flat_map(|c| (0..l.nodes).map(move |v| (c, v)))
            .map(|(c, v)| {
                let e = x[[c, 0, v, 0]];
                match &self.input_affine {
                    Some((s, t)) => s[c * l.nodes + v] * e + t[c * l.nodes + v],
                    None => e,
                }
            })
            .collect();
        l.pack(&flat)
    }

    /// Encrypts one sample with the public key at the input level.
    ///
    /// # Errors
    /// Shape and CKKS errors.
    pub fn encrypt_input(&self, pk: &PublicKey, x: ArrayView4<'_, f64>) -> Result<Ciphertext> {
        let pt = self.encoder.encode(
            &self.pack_input(x)?,
            self.plan.depth,
            self.params.default_scale(),
        )?;
        Ok(pk.encrypt(&pt)?)
    }

    /// Decrypts the class scores.
    ///
    /// # Errors
    /// CKKS errors.
    pub fn decrypt_logits(&self, sk: &SecretKey, logits: &EncryptedLogits) -> Result<Vec<f64>> {
        let dec: Vec<Vec<f64>> = logits
            .cts
            .iter()
            .map(|c| Ok(self.encoder.decode(&sk.decrypt(c)?)))
            .collect::<Result<_>>()?;
        Ok(logits.positions.iter().map(|&(c, s)| dec[c][s]).collect())
    }

    /// A compiled slot vector replicated over the slots, encoded at the level of `like` and
    /// `scale` (through the plaintext cache: the same every request).
    fn encode_like(
        &self,
        v: &SlotVector,
        like: &Ciphertext,
        scale: f64,
    ) -> Result<Arc<ckks::Plaintext>> {
        let slots = self.params.slots();
        let values = || replicate(&v.values, slots);
        self.cache
            .get_or_encode_keyed(&self.encoder, v.id, values, like.level(), scale)
    }

    fn add_bias(&self, eval: &Evaluator, ct: &Ciphertext, bias: &SlotVector) -> Result<Ciphertext> {
        if bias.is_zero() {
            return Ok(ct.clone());
        }
        let pt = self.encode_like(bias, ct, ct.scale())?;
        Ok(eval.add_plain(ct, &pt)?)
    }

    /// `a⊙x² + b⊙x + c` as `x·(a⊙x) + (b⊙x)` (one level). The input comes at the reduced
    /// scale `t` = [`PRE_ACT_SCALE_DROP`] bits below `Δ` (the preceding map's target), so `a`
    /// is encoded at `pa = q_ℓ·Δ/t² ≈ 2^(2·drop)` and the output lands at exactly `Δ`: the next
    /// map's weights keep full precision, `a` is quantised to `~1/pa`.
    fn activation(&self, eval: &Evaluator, act: &DenseAct, x: &Ciphertext) -> Result<Ciphertext> {
        let t = x.scale();
        let q = self.params.q_prime(x.level())? as f64;
        let pa = q * self.params.default_scale() / (t * t);
        let ax = eval.mul_plain(x, &*self.encode_like(&act.a, x, pa)?)?;
        let mut z = eval.mul(x, &ax)?;
        if !act.b.is_zero() {
            let bx = eval.mul_plain(x, &*self.encode_like(&act.b, x, t * pa)?)?;
            eval.add_assign(&mut z, &bx)?;
        }
        let z = eval.rescale(&z)?;
        self.add_bias(eval, &z, &act.c)
    }

    /// The scale a linear map targets: reduced before an activation site, `Δ` otherwise.
    fn target_before(&self, act: Option<&DenseAct>) -> f64 {
        let d = self.params.default_scale();
        match act {
            Some(_) => d / f64::from(PRE_ACT_SCALE_DROP).exp2(),
            None => d,
        }
    }

    /// Block `i` on `x`; `trace` sees every stage's output.
    fn block(
        &self,
        eval: &Evaluator,
        i: usize,
        x: &Ciphertext,
        trace: &mut dyn FnMut(Stage, &Ciphertext),
    ) -> Result<Ciphertext> {
        let b = &self.blocks[i];
        let target = self.target_before(b.act1.as_ref());
        let babies = baby_steps(eval, vec![x.clone()], b.gcn.max_baby())?;
        let g = DiagMap::apply_sum(
            eval,
            &self.encoder,
            &self.cache,
            &[(&b.gcn, &babies)],
            target,
        )?;
        let g = self.add_bias(eval, &g, &b.gcn_bias)?;
        trace(Stage::Gcn(i), &g);
        let h = match &b.act1 {
            Some(a) => self.activation(eval, a, &g)?,
            None => g,
        };
        trace(Stage::Act1(i), &h);
        let target = self.target_before(b.act2.as_ref());
        let r = match &b.residual {
            Some(res) => {
                // The residual reads the block input, whose rotations the graph convolution
                // took: reuse them, dropped to this level.
                let xb = babies
                    .iter()
                    .take(res.max_baby() + 1)
                    .map(|c| eval.drop_to_level(c, h.level()))
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                let xb = baby_steps(eval, xb, res.max_baby())?;
                let hb = baby_steps(eval, vec![h.clone()], b.tcn.max_baby())?;
                let maps = [(&b.tcn, &hb[..]), (res, &xb[..])];
                DiagMap::apply_sum(eval, &self.encoder, &self.cache, &maps, target)?
            }
            None => b.tcn.apply(eval, &self.encoder, &self.cache, &h, target)?,
        };
        let r = self.add_bias(eval, &r, &b.tcn_bias)?;
        trace(Stage::Tcn(i), &r);
        let out = match &b.act2 {
            Some(a) => self.activation(eval, a, &r)?,
            None => r,
        };
        trace(Stage::Act2(i), &out);
        Ok(out)
    }

    /// The head: dense layer with the `1/V` pooling factor, node sum by `log2(n/P)` rotations
    /// (`P`, `2P`, …), bias, and the 0/1 mask that keeps only the logit slots of the first
    /// period.
    fn head(
        &self,
        eval: &Evaluator,
        x: &Ciphertext,
        trace: &mut dyn FnMut(Stage, &Ciphertext),
    ) -> Result<EncryptedLogits> {
        let target = self.params.default_scale();
        let z = self
            .head
            .apply(eval, &self.encoder, &self.cache, x, target)?;
        trace(Stage::HeadDense, &z);
        // Log-depth sum over the node positions: position 0 gathers all of them (the
        // unoccupied ones are zero).
        let mut acc = z;
        for step in self.node_sum_steps() {
            let r = eval.rotate(&acc, step)?;
            eval.add_assign(&mut acc, &r)?;
        }
        let acc = self.add_bias(eval, &acc, &self.head_bias)?;
        trace(Stage::NodeSum, &acc);
        let q = self.params.q_prime(acc.level())? as f64;
        let pt = self.encode_like(&self.logit_mask, &acc, q * target / acc.scale())?;
        let out = eval.rescale(&eval.mul_plain(&acc, &pt)?)?;
        trace(Stage::Mask, &out);
        Ok(EncryptedLogits {
            cts: vec![out],
            positions: (0..self.classes).map(|q| (0, q)).collect(),
        })
    }

    /// The whole network on an input encrypted at level `plan().depth`.
    ///
    /// # Errors
    /// [`HeGcnError::Shape`] for an input at another level; CKKS errors (a missing key).
    pub fn forward(&self, eval: &Evaluator, x: &Ciphertext) -> Result<EncryptedLogits> {
        self.forward_traced(eval, x, &mut |_, _| {})
    }

    /// [`Self::forward`], calling `trace` with every stage's output as it is produced (what
    /// the `dense_bodypose` bench times per stage).
    ///
    /// # Errors
    /// As [`Self::forward`].
    pub fn forward_traced(
        &self,
        eval: &Evaluator,
        x: &Ciphertext,
        trace: &mut dyn FnMut(Stage, &Ciphertext),
    ) -> Result<EncryptedLogits> {
        if x.level() != self.plan.depth {
            return Err(HeGcnError::Shape {
                what: "dense input level",
                expected: self.plan.depth,
                found: x.level(),
            });
        }
        let mut cur = x.clone();
        for i in 0..self.blocks.len() {
            cur = self.block(eval, i, &cur, trace)?;
        }
        self.head(eval, &cur, trace)
    }
}
