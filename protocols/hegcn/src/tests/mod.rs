//! Differential tests: every encrypted stage against its plaintext twin, whole-model logits
//! against `FoldedModel::forward`, level planning, and op counts against the formulas in
//! `crate::model::counts`. This module holds the shared fixtures (insecure test parameters,
//! keys, small random models and inputs, comparison helpers); the tests are grouped by topic:
//! `stages` (stage-by-stage and logit agreement, coefficient-folding precision), `counts`
//! (measured against formula and plan), `planner` (presets and refusals), `mixed` (mixed
//! packing plans and the packing planner), `cache` (plaintext
//! cache and lockstep budgets), `batching` (several samples per pass), `logits` (what the
//! returned ciphertexts reveal) and `dense` (the dense single-pose layout).
//!
//! Tolerance: `max |enc − plain| ≤ TOL · max(1, max |plain|)` with `TOL = 2e-4`, the budget of
//! the channel-major packing, where general polynomial coefficients are evaluated at a reduced
//! scale (plaintext weights quantised to ~2^-20 after a scale-2^60 activation output). Under
//! AMA the coefficients are folded into the weights and the error is CKKS noise at Δ = 2^40
//! (~1e-9 relative, checked with 1e-6 in `ama_coefficient_folding_keeps_full_precision`);
//! measured errors are printed by `--nocapture`.

use ckks::{
    CkksParams, Dnum, Evaluator, KeyGenerator, Levels, LogN, PrimeBits, PublicKey, ScaleBits,
    SecretKey, SpecialPrimes,
};
use ndarray::{Array1, Array2, Array4, Array5, Axis};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use stgcn::{
    spatial_partition, ActivationKind, Architecture, FoldedActivation, FoldedModel, FoldedResidual,
    StGcn, StGcnConfig,
};

use crate::model::{counts_sum, StageReport};
use crate::reference;
use crate::{choose_preset, level_plan, HeGcnError, HeStgcn, Packing};

mod batching;
mod cache;
mod counts;
mod dense;
mod logits;
mod mixed;
mod planner;
mod stages;

const TOL: f64 = 2e-4;

/// **Insecure** test parameters (small N, no security check).
pub(crate) fn test_params(log_n: u32, levels: usize) -> CkksParams {
    CkksParams::builder()
        .name("INSECURE_HEGCN_TEST")
        .log_n(LogN(log_n))
        .scale_bits(ScaleBits(40))
        .levels(Levels(levels))
        .first_prime_bits(PrimeBits(50))
        .special_primes(SpecialPrimes(2))
        .special_prime_bits(PrimeBits(55))
        .dnum(Dnum(levels + 1))
        .insecure_skip_security_check()
        .build()
        .unwrap()
}

struct Keys {
    sk: SecretKey,
    pk: PublicKey,
    eval: Evaluator,
}

fn keys(he: &HeStgcn, seed: u8) -> Keys {
    let params = he.params();
    let mut kg = KeyGenerator::from_seed(params, [seed; 32]);
    let sk = kg.secret_key();
    let pk = kg.public_key(&sk).unwrap();
    let eval = Evaluator::new(params)
        .with_relin_key(kg.relin_key(&sk).unwrap())
        .with_galois_keys(kg.galois_keys(&sk, &he.rotation_steps(), false).unwrap());
    Keys { sk, pk, eval }
}

fn chain_graph(v: usize) -> ndarray::Array3<f64> {
    let mut edges: Vec<(usize, usize)> = (0..v - 1).map(|i| (i, i + 1)).collect();
    if v > 3 {
        edges.push((1, v - 1));
    }
    spatial_partition(v, &edges, 1).unwrap()
}

/// A small STGCN-3 with random folded biases, BN-like scales and an input affine map.
fn small_model(
    v: usize,
    t: usize,
    m: usize,
    divisor: usize,
    kind: ActivationKind,
    prune: &[(usize, usize, Vec<usize>)],
    seed: u64,
) -> FoldedModel {
    let a = chain_graph(v);
    let mut cfg = StGcnConfig::new(Architecture::Stgcn3x128, divisor, 3, t, &a, 4);
    cfg.num_persons = m;
    cfg.activation = kind;
    for (b, s, nodes) in prune {
        cfg.prune(*b, *s, nodes).unwrap();
    }
    let model = StGcn::new(cfg, seed).unwrap();
    let mut f = model.fold();
    let mut rng = ChaCha20Rng::seed_from_u64(seed + 1);
    let mut r = |s: f64| rng.gen_range(-s..s);
    for blk in &mut f.blocks {
        blk.gcn_bias.mapv_inplace(|_| r(0.1));
        blk.tcn_bias.mapv_inplace(|_| r(0.1));
        blk.aggregation
            .mapv_inplace(|x| if x != 0.0 { x * (1.0 + r(0.3)) } else { 0.0 });
        for act in [&mut blk.act1, &mut blk.act2] {
            if let FoldedActivation::Poly { a, b, c } = act {
                if kind == ActivationKind::Poly {
                    for i in 0..a.len() {
                        if !(a[i] == 0.0 && b[i] == 1.0 && c[i] == 0.0) {
                            a[i] += r(0.1);
                            b[i] += r(0.1);
                            c[i] += r(0.1);
                        }
                    }
                }
            }
        }
    }
    f.fc_bias.mapv_inplace(|_| r(0.5));
    let scale = Array2::from_shape_fn((3, v), |_| 0.5 + r(0.2));
    let shift = Array2::from_shape_fn((3, v), |_| r(0.1));
    f.input_affine = Some((scale, shift));
    f
}

fn random_input(c: usize, t: usize, v: usize, m: usize, seed: u64) -> Array4<f64> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    Array4::from_shape_fn((c, t, v, m), |_| rng.gen_range(-1.0..1.0))
}

fn max_err(a: &Array4<f64>, b: &Array4<f64>) -> (f64, f64) {
    assert_eq!(a.dim(), b.dim());
    let err = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max);
    let mag = b.iter().map(|x| x.abs()).fold(0.0, f64::max);
    (err, mag)
}

fn assert_close(what: &str, enc: &Array4<f64>, plain: &Array4<f64>) {
    let (err, mag) = max_err(enc, plain);
    println!("{what}: max err {err:.3e}, max |plain| {mag:.3e}");
    assert!(err <= TOL * mag.max(1.0), "{what}: err {err} > {TOL}·{mag}");
}

/// `x[c, t, v, m] · s[v]`.
fn node_scaled(x: &Array4<f64>, s: &[f64]) -> Array4<f64> {
    let mut y = x.clone();
    for ((_, _, v, _), e) in y.indexed_iter_mut() {
        *e *= s[v];
    }
    y
}

fn argmax(v: &[f64]) -> usize {
    v.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|p| p.0)
        .unwrap()
}

fn folded_logits(model: &FoldedModel, x: &Array4<f64>) -> Array1<f64> {
    let x5: Array5<f64> = x.clone().insert_axis(Axis(0));
    model.forward(x5.view()).unwrap().row(0).to_owned()
}
