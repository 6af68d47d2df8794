//! Per-operation costs of CKKS at the levels a model runs at, probed on one thread, and the
//! estimate of a stage's latency from its operation counts (counts × costs).

use super::engine::ClientKeys;
use crate::common;
use anyhow::Result;
use ckks::{CkksParams, Evaluator, OpCounts, PublicKey};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use std::time::Instant;

/// Per-operation costs at one level (seconds, one thread).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct OpCosts {
    pub(super) encode: f64,
    pub(super) mul_plain: f64,
    pub(super) add: f64,
    pub(super) rescale: f64,
    pub(super) tensor: f64,
    pub(super) decompose: f64,
    /// A key switch's inner product, without its division by `P`.
    pub(super) key_switch: f64,
    /// The division of one polynomial by `P` (ModDown).
    pub(super) mod_down: f64,
}

impl OpCosts {
    /// Seconds of `c` with pre-encoded plaintexts.
    pub(super) fn seconds(&self, c: &OpCounts) -> f64 {
        c.decompose as f64 * self.decompose
            + c.key_switch as f64 * self.key_switch
            + c.mod_down as f64 * self.mod_down
            + c.mul_plain as f64 * self.mul_plain
            + (c.add + c.mul_const) as f64 * self.add
            + c.mul as f64 * self.tensor
            + c.rescale as f64 * self.rescale
    }
}

/// The costs probed at `level` in `costs` (zero where that level was not probed).
pub(super) fn cost_at(costs: &[(usize, OpCosts)], level: usize) -> OpCosts {
    costs
        .iter()
        .find(|c| c.0 == level)
        .map(|c| c.1)
        .unwrap_or_default()
}

fn time_median(reps: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    let mut v = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t0 = Instant::now();
        f()?;
        v.push(t0.elapsed().as_secs_f64());
    }
    Ok(common::median(&v))
}

/// Probes the cost of each operation at each of `levels` on one thread: a rotation kept over
/// `Q·P` (one decomposition + one inner product) and a batch of 4 (one decomposition + 4
/// inner products) separate the two parts; a ModDown is timed on its own.
pub(super) fn probe_costs(
    params: &CkksParams,
    keys: &mut ClientKeys,
    levels: &[usize],
) -> Result<Vec<(usize, OpCosts)>> {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    let eval = keys.evaluator(params, &[1, 2, 3, 4], params.max_level())?;
    let enc = ckks::Encoder::new(params);
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let vals: Vec<f64> = (0..params.slots())
        .map(|_| rng.gen_range(-1.0..1.0))
        .collect();
    let probe = Probe {
        params,
        eval: &eval,
        enc: &enc,
        pk: &keys.pk,
        vals: &vals,
    };
    let pb = common::progress(levels.len() as u64, "probing op costs");
    let mut out = Vec::new();
    for &level in levels {
        let costs = pool.install(|| probe.at(level))?;
        out.push((level, costs));
        pb.inc(1);
    }
    pb.finish_and_clear();
    Ok(out)
}

/// What probing needs: an evaluator with Galois keys for steps 1..=4, an encoder, the public
/// key and the slot values every probe encodes.
struct Probe<'a> {
    params: &'a CkksParams,
    eval: &'a Evaluator,
    enc: &'a ckks::Encoder,
    pk: &'a PublicKey,
    vals: &'a [f64],
}

impl Probe<'_> {
    /// The costs at one level (run inside a one-thread pool).
    fn at(&self, level: usize) -> Result<OpCosts> {
        let (eval, enc, vals) = (self.eval, self.enc, self.vals);
        let scale = self.params.default_scale();
        let pt = enc.encode(vals, level, scale)?;
        let ct = self.pk.encrypt(&pt)?;
        let encode = time_median(3, || {
            enc.encode(vals, level, scale)?;
            Ok(())
        })?;
        let mul_plain = time_median(5, || {
            eval.mul_plain(&ct, &pt)?;
            Ok(())
        })?;
        let add = time_median(5, || {
            eval.add(&ct, &ct)?;
            Ok(())
        })?;
        let prod = eval.mul_plain(&ct, &pt)?;
        let rescale = if level > 0 {
            time_median(3, || {
                eval.rescale(&prod)?;
                Ok(())
            })?
        } else {
            0.0
        };
        let tensor = time_median(3, || {
            eval.mul_no_relin(&ct, &ct)?;
            Ok(())
        })?;
        // Rotations kept over Q·P (no ModDown) separate the decomposition from the inner
        // products; the ModDown is timed on its own.
        let one = time_median(3, || {
            eval.rotate_hoisted_ext(&ct, &[1])?;
            Ok(())
        })?;
        let four = time_median(2, || {
            eval.rotate_hoisted_ext(&ct, &[1, 2, 3, 4])?;
            Ok(())
        })?;
        let lifted = eval.lift_ext(&ct)?;
        let mod_down_pair = time_median(3, || {
            eval.mod_down_ext(lifted.clone())?;
            Ok(())
        })?;
        let key_switch = ((four - one) / 3.0).max(0.0);
        Ok(OpCosts {
            encode,
            mul_plain,
            add,
            rescale,
            tensor,
            decompose: (one - key_switch).max(0.0),
            key_switch,
            mod_down: mod_down_pair / 2.0,
        })
    }
}
