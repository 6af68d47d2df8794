//! Activation replacement with per-channel calibration: turns a trained ReLU ST-GCN into an
//! `x²` one that computes nearly the same function, as the start of the fine-tuning after
//! activation replacement that CryptoGCN (Ran et al., NeurIPS 2022) and LinGCN (Peng et al.,
//! NeurIPS 2023; there with distillation from the ReLU teacher, see [`super::Distillation`]) use.
//!
//! # Method
//! At every activation site and channel `c`, the ReLU model's pre-activations `u` on calibration
//! clips (evaluation mode) are standardised, `ū = (u − m_c) / s_c`, and ReLU is fitted by least
//! squares over that channel's empirical distribution: `ReLU(u) ≈ α ū² + β ū + κ`. With
//! `A = √α` and `B = β / (2A)`, `(A ū + B)² = α ū² + β ū + B²`: the square of the affine map
//! `u ↦ a·u + b` (`a = A / s_c`, `b = B − a·m_c`) is the fitted quadratic plus the constant
//! `δ_c = B² − κ`. So
//! - `a` and `b` are folded into the batch norms whose (sum of) outputs is `u` (`bn1` before
//!   site 0; `bn2` and the residual BN before site 1): `γ ← a·γ`, `β ← a·β + b` (the residual BN
//!   gets `β ← a·β`);
//! - `δ_c` is subtracted downstream, in the bias of every layer that reads the site's output
//!   (the temporal convolution after site 0; the next block's graph and residual convolutions,
//!   or the classifier, after site 1), so the following layers see what they saw in the ReLU
//!   model. The temporal convolution's zero padding is the one place where this is not exact:
//!   its border taps read zeros, not `δ`;
//! - an identity residual carries the previous block's output into the next site unscaled, so
//!   that output is scaled by the next site's `a` instead (`a` and `b` of the previous site
//!   times `√a_next`, which multiplies its square by `a_next`), with the next convolutions'
//!   weights divided by `a_next`, and its `δ` is subtracted in the next `bn2`'s shift.
//!
//! Channels whose pre-activations are almost always positive (or negative) make ReLU nearly
//! linear there, `α → 0` and `B = β / (2√α)` unbounded; `α` is therefore floored at
//! [`MIN_CURVATURE`]`·s_c` (a standard-normal channel has `α = 0.20·s_c`) and `β, κ` refitted
//! with that `α`. The globally fitted reset `γ = 0.45, β = 0.56` is the special case of a
//! standard-normal `u` in every channel, which a trained network does not have.
//!
//! Only BN affine parameters, convolution biases and weights change: the model keeps its form,
//! BN folds into the convolutions and the activation is exactly `x²`.

use ndarray::{Array4, ArrayD, ArrayView5, Axis};

use super::model::ResIdx;
use super::{ActivationKind, ModelError, NamedTensor, Result, StGcn};

/// Smallest curvature of a fitted quadratic, as a fraction of the channel's standard deviation.
pub const MIN_CURVATURE: f64 = 0.05;

/// The fit at one activation site, one entry per channel.
#[derive(Clone, Debug, PartialEq)]
pub struct SiteCalibration {
    /// Block index.
    pub block: usize,
    /// Site: 0 after the first BN, 1 after the residual sum.
    pub site: usize,
    /// Mean `m_c` of the ReLU model's pre-activations.
    pub mean: Vec<f64>,
    /// Standard deviation `s_c` of the ReLU model's pre-activations.
    pub std: Vec<f64>,
    /// `(α, β, κ)` of `ReLU(u) ≈ α ū² + β ū + κ` in the standardised `ū`.
    pub fit: Vec<[f64; 3]>,
    /// Scale `a` of the new pre-activation `a·u + b` (before any identity-residual rescaling).
    pub scale: Vec<f64>,
    /// Shift `b` of the new pre-activation.
    pub shift: Vec<f64>,
    /// `δ_c`: the square minus the fitted quadratic, removed downstream.
    pub offset: Vec<f64>,
    /// Root-mean-square error of the quadratic against ReLU over the calibration values,
    /// divided by `s_c` (about 0.11 for a normal `u` centred at 0).
    pub relative_rms_error: Vec<f64>,
    /// Channels whose curvature was raised to [`MIN_CURVATURE`].
    pub floored: usize,
}

/// What [`relu_to_square`] fitted, site by site (block order, site 0 then 1).
#[derive(Clone, Debug, PartialEq)]
pub struct SquareCalibration {
    /// One entry per activation site.
    pub sites: Vec<SiteCalibration>,
}

/// Per-channel sums of one site: `Σ ū^k` (k = 0..4), `Σ ReLU(u)·ū^k` (k = 0..2) and `Σ ReLU(u)²`.
#[derive(Clone, Default)]
struct Moments {
    s: [f64; 5],
    r: [f64; 3],
    rr: f64,
}

/// Sum and sum of squares per channel (first pass).
fn channel_sums(x: &Array4<f64>, acc: &mut [(f64, f64, f64)]) {
    for sample in x.outer_iter() {
        for (c, plane) in sample.outer_iter().enumerate() {
            let (s, q) = plane.fold((0.0, 0.0), |(s, q), &u| (s + u, q + u * u));
            acc[c].0 += s;
            acc[c].1 += q;
            acc[c].2 += plane.len() as f64;
        }
    }
}

/// Solves the symmetric 3×3 system `m·θ = r` by Gaussian elimination with partial pivoting
/// (a tiny ridge keeps a degenerate channel solvable).
fn solve3(mut m: [[f64; 3]; 3], mut r: [f64; 3]) -> [f64; 3] {
    let ridge = 1e-12 * (m[0][0] + m[1][1] + m[2][2]).max(1e-300);
    for (i, row) in m.iter_mut().enumerate() {
        row[i] += ridge;
    }
    for col in 0..3 {
        let p = (col..3)
            .max_by(|&i, &j| m[i][col].abs().total_cmp(&m[j][col].abs()))
            .unwrap_or(col);
        m.swap(col, p);
        r.swap(col, p);
        let pivot = m[col];
        for row in col + 1..3 {
            let f = m[row][col] / pivot[col];
            for (x, p) in m[row].iter_mut().zip(pivot).skip(col) {
                *x -= f * p;
            }
            r[row] -= f * r[col];
        }
    }
    let mut th = [0.0; 3];
    for i in (0..3).rev() {
        let tail: f64 = (i + 1..3).map(|k| m[i][k] * th[k]).sum();
        th[i] = (r[i] - tail) / m[i][i];
    }
    th
}

/// Fits one channel from its moments; returns `(α, β, κ, floored)`.
fn fit_channel(mo: &Moments, std: f64) -> (f64, f64, f64, bool) {
    let s = &mo.s;
    let m = [[s[4], s[3], s[2]], [s[3], s[2], s[1]], [s[2], s[1], s[0]]];
    let [alpha, beta, kappa] = solve3(m, [mo.r[2], mo.r[1], mo.r[0]]);
    let floor = MIN_CURVATURE * std;
    if alpha >= floor {
        return (alpha, beta, kappa, false);
    }
    // Refit β, κ for ReLU − floor·ū² (the 2×2 system of the last two unknowns).
    let m2 = [[s[2], s[1], 0.0], [s[1], s[0], 0.0], [0.0, 0.0, 1.0]];
    let r2 = [mo.r[1] - floor * s[3], mo.r[0] - floor * s[2], 0.0];
    let [beta, kappa, _] = solve3(m2, r2);
    (floor, beta, kappa, true)
}

/// Turns the trained ReLU model `relu` into an `x²` model that computes nearly the same
/// function, calibrated on the `(N, C, T, V, M)` clips `x` (the training set): see the module
/// docs. Errors if `relu` is not a ReLU model, if any activation node is pruned (the per-channel
/// affine maps would also move the identity nodes), or if `x` does not fit the model.
pub fn relu_to_square(relu: &StGcn, x: ArrayView5<'_, f64>) -> Result<(StGcn, SquareCalibration)> {
    let cfg = relu.config();
    if cfg.activation != ActivationKind::Relu {
        return Err(ModelError::WrongActivation {
            expected: ActivationKind::Relu,
            found: cfg.activation,
        });
    }
    for (block, sites) in cfg.activation_mask.iter().enumerate() {
        for (site, mask) in sites.iter().enumerate() {
            if mask.iter().any(|&k| !k) {
                return Err(ModelError::PrunedSite { block, site });
            }
        }
    }
    let blocks = cfg.blocks.len();
    let channels: Vec<usize> = cfg.blocks.iter().map(|b| b.out_channels).collect();
    let site_index = |block: usize, site: usize| 2 * block + site;

    // Pass 1: mean and standard deviation per channel.
    let mut sums: Vec<Vec<(f64, f64, f64)>> = (0..2 * blocks)
        .map(|i| vec![(0.0, 0.0, 0.0); channels[i / 2]])
        .collect();
    relu.observe_activation_inputs(x, &mut |b, s, u| {
        channel_sums(u, &mut sums[site_index(b, s)]);
    })?;
    let stats: Vec<Vec<(f64, f64)>> = sums
        .iter()
        .map(|site| {
            site.iter()
                .map(|&(s, q, n)| {
                    let n = n.max(1.0);
                    let mean = s / n;
                    let var = (q / n - mean * mean).max(0.0);
                    (mean, var.sqrt().max(1e-6))
                })
                .collect()
        })
        .collect();

    // Pass 2: moments of the standardised values.
    let mut moments: Vec<Vec<Moments>> = channels
        .iter()
        .flat_map(|&c| [vec![Moments::default(); c], vec![Moments::default(); c]])
        .collect();
    relu.observe_activation_inputs(x, &mut |b, s, u| {
        let i = site_index(b, s);
        for sample in u.outer_iter() {
            for (c, plane) in sample.axis_iter(Axis(0)).enumerate() {
                let (m, sd) = stats[i][c];
                let mo = &mut moments[i][c];
                for &v in plane.iter() {
                    let z = (v - m) / sd;
                    let r = v.max(0.0);
                    let z2 = z * z;
                    mo.s[0] += 1.0;
                    mo.s[1] += z;
                    mo.s[2] += z2;
                    mo.s[3] += z2 * z;
                    mo.s[4] += z2 * z2;
                    mo.r[0] += r;
                    mo.r[1] += r * z;
                    mo.r[2] += r * z2;
                    mo.rr += r * r;
                }
            }
        }
    })?;

    // Fits.
    let mut sites = Vec::with_capacity(2 * blocks);
    for (i, site_moments) in moments.iter().enumerate() {
        let n_ch = site_moments.len();
        let mut cal = SiteCalibration {
            block: i / 2,
            site: i % 2,
            mean: Vec::with_capacity(n_ch),
            std: Vec::with_capacity(n_ch),
            fit: Vec::with_capacity(n_ch),
            scale: Vec::with_capacity(n_ch),
            shift: Vec::with_capacity(n_ch),
            offset: Vec::with_capacity(n_ch),
            relative_rms_error: Vec::with_capacity(n_ch),
            floored: 0,
        };
        for (c, mo) in site_moments.iter().enumerate() {
            let (m, sd) = stats[i][c];
            let (alpha, beta, kappa, floored) = fit_channel(mo, sd);
            let big_a = alpha.sqrt();
            let big_b = beta / (2.0 * big_a);
            let a = big_a / sd;
            // Squared error Σ (ReLU − q)² expanded in the accumulated moments.
            let s = &mo.s;
            let qq = alpha * alpha * s[4]
                + beta * beta * s[2]
                + kappa * kappa * s[0]
                + 2.0 * alpha * beta * s[3]
                + 2.0 * alpha * kappa * s[2]
                + 2.0 * beta * kappa * s[1];
            let rq = alpha * mo.r[2] + beta * mo.r[1] + kappa * mo.r[0];
            let sse = (mo.rr - 2.0 * rq + qq).max(0.0);
            cal.mean.push(m);
            cal.std.push(sd);
            cal.fit.push([alpha, beta, kappa]);
            cal.scale.push(a);
            cal.shift.push(big_b - a * m);
            cal.offset.push(big_b * big_b - kappa);
            cal.relative_rms_error
                .push((sse / s[0].max(1.0)).sqrt() / sd);
            cal.floored += usize::from(floored);
        }
        sites.push(cal);
    }

    let mut model = relu.with_activation(ActivationKind::Square);
    model.apply_square_calibration(&sites);
    Ok((model, SquareCalibration { sites }))
}

impl StGcn {
    /// Folds the per-channel maps of `sites` into the tensors (see the module docs).
    fn apply_square_calibration(&mut self, sites: &[SiteCalibration]) {
        let layout = self.layout().clone();
        let blocks = layout.blocks.len();
        // λ_i: scale of block i's output relative to `ReLU + δ`. It is the next site's effective
        // scale when the next block adds the output through an identity residual, else 1; the
        // effective scale of site 1 of block i is a·√λ_i (its square is λ_i·(ReLU + δ)).
        let mut lambda: Vec<Vec<f64>> = vec![Vec::new(); blocks];
        let mut eff: Vec<Vec<(f64, f64)>> = vec![Vec::new(); blocks];
        for i in (0..blocks).rev() {
            let s1 = &sites[2 * i + 1];
            let out = s1.scale.len();
            lambda[i] = match layout.blocks.get(i + 1).map(|b| &b.res) {
                Some(ResIdx::Identity) => eff[i + 1].iter().map(|&(a, _)| a).collect(),
                _ => vec![1.0; out],
            };
            eff[i] = (0..out)
                .map(|c| {
                    let r = lambda[i][c].sqrt();
                    (s1.scale[c] * r, s1.shift[c] * r)
                })
                .collect();
        }
        let t = self.tensors_mut();
        for (i, b) in layout.blocks.iter().enumerate() {
            let s0 = &sites[2 * i];
            // Site 0: bn1 produces u.
            let ab0: Vec<(f64, f64)> = s0.scale.iter().copied().zip(s0.shift.clone()).collect();
            affine(t, (b.bn1.weight, b.bn1.bias), &ab0);
            // δ of site 0 enters the temporal convolution: bias −= Σ_{c,k} W[o, c, k]·δ_c.
            let w = t[b.tcn_w].value.clone();
            let mut bias = get(t, b.tcn_b);
            for (o, bo) in bias.iter_mut().enumerate() {
                for (c, d) in s0.offset.iter().enumerate() {
                    for k in 0..w.shape()[2] {
                        *bo -= w[[o, c, k]] * d;
                    }
                }
            }
            set(t, b.tcn_b, bias);
            // Site 1: bn2 plus the residual BN, or the previous output, produce u.
            affine(t, (b.bn2.weight, b.bn2.bias), &eff[i]);
            match &b.res {
                ResIdx::Conv { bn, .. } => {
                    let a_only: Vec<(f64, f64)> = eff[i].iter().map(|&(a, _)| (a, 0.0)).collect();
                    affine(t, (bn.weight, bn.bias), &a_only);
                }
                ResIdx::Identity => {
                    // The previous output arrives as a·(ReLU + δ_prev) (λ_{i−1} = a): remove a·δ_prev.
                    let prev = &sites[2 * (i - 1) + 1];
                    let mut be = get(t, b.bn2.bias);
                    for (c, x) in be.iter_mut().enumerate() {
                        *x -= eff[i][c].0 * prev.offset[c];
                    }
                    set(t, b.bn2.bias, be);
                }
                ResIdx::None => {}
            }
            // Readers of this block's output λ·(ReLU + δ): weights ÷ λ, bias −= W·δ.
            let readers: Vec<(usize, usize)> = match layout.blocks.get(i + 1) {
                Some(next) => {
                    let mut v = vec![(next.gcn_w, next.gcn_b)];
                    if let ResIdx::Conv { weight, bias, .. } = &next.res {
                        v.push((*weight, *bias));
                    }
                    v
                }
                None => vec![(layout.fc_w, layout.fc_b)],
            };
            let offset = &sites[2 * i + 1].offset;
            for (wi, bi) in readers {
                let mut w = t[wi].value.clone();
                let mut bias = get(t, bi);
                for (o, bo) in bias.iter_mut().enumerate() {
                    for (c, d) in offset.iter().enumerate() {
                        *bo -= w[[o, c]] * d;
                    }
                }
                for mut row in w.outer_iter_mut() {
                    for (x, l) in row.iter_mut().zip(&lambda[i]) {
                        *x /= l;
                    }
                }
                t[wi].value = w;
                set(t, bi, bias);
            }
        }
    }
}

fn get(t: &[NamedTensor], i: usize) -> Vec<f64> {
    t[i].value.iter().copied().collect()
}

fn set(t: &mut [NamedTensor], i: usize, v: Vec<f64>) {
    let shape = t[i].value.raw_dim();
    t[i].value = ArrayD::from_shape_vec(shape, v).expect("same length");
}

/// `γ ← a·γ`, `β ← a·β + b` per channel on the BN with tensors `(weight, bias)`.
fn affine(t: &mut [NamedTensor], (wi, bi): (usize, usize), ab: &[(f64, f64)]) {
    let (mut g, mut be) = (get(t, wi), get(t, bi));
    for (c, &(a, b)) in ab.iter().enumerate() {
        g[c] *= a;
        be[c] = a * be[c] + b;
    }
    set(t, wi, g);
    set(t, bi, be);
}
