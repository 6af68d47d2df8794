//! Synthetic datasets with a planted model, for scale tests and for checking that training
//! recovers a known answer: linear regression `y = X·w* + ε` and logistic labels
//! `y ~ Bernoulli(σ(X·w*))`, of any size `n × d` (SecureML's synthetic-data experiments scale the
//! same way, up to 60,000 × 784 and beyond).
//!
//! Generation is deterministic in the seed and independent of the thread count: `w*` comes from
//! ChaCha20 stream 0 of the seed, and each block of [`BLOCK_ROWS`] rows from its own pair of
//! streams (features, noise), filled in parallel with rayon. A consequence worth relying on: for
//! the same seed and `d`, the data for `n` rows is a prefix of the data for any larger `n`.

use ndarray::{Array1, Array2};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::dataset::{Dataset, Task};
use crate::error::{DatasetError, Result};

/// Rows generated from one pair of ChaCha20 streams.
pub const BLOCK_ROWS: usize = 256;

/// Distribution of each feature (independent across features and rows).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FeatureDist {
    /// Uniform on `[low, high)`.
    Uniform {
        /// Lower end.
        low: f64,
        /// Upper end.
        high: f64,
    },
    /// Normal with the given mean and standard deviation.
    Normal {
        /// Mean.
        mean: f64,
        /// Standard deviation.
        std: f64,
    },
}

impl FeatureDist {
    fn std(self) -> f64 {
        match self {
            FeatureDist::Uniform { low, high } => (high - low) / 12f64.sqrt(),
            FeatureDist::Normal { std, .. } => std,
        }
    }

    fn validate(self) -> Result<()> {
        let ok = match self {
            FeatureDist::Uniform { low, high } => low.is_finite() && high.is_finite() && low < high,
            FeatureDist::Normal { mean, std } => mean.is_finite() && std.is_finite() && std > 0.0,
        };
        if ok {
            Ok(())
        } else {
            Err(DatasetError::InvalidArgument {
                name: "features",
                value: self.std(),
                constraint: "finite parameters with low < high (uniform) or std > 0 (normal)",
            })
        }
    }
}

/// Size, feature distribution, signal strength and seed of a planted problem (serializable, so
/// an experiment config can name one).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PlantedSpec {
    /// Number of samples.
    pub n: usize,
    /// Number of features.
    pub d: usize,
    /// Feature distribution.
    pub features: FeatureDist,
    /// Standard deviation of the noiseless response `x·w*` over the feature distribution
    /// (about its mean): `w*` is drawn from N(0, I) and rescaled so that
    /// `feature_std · ‖w*‖ = signal_std`.
    pub signal_std: f64,
    /// Seed of the generator.
    pub seed: u64,
}

impl PlantedSpec {
    /// `n × d` with features uniform on `[-1, 1)` (fixed-point friendly) and `signal_std = 1`.
    pub fn new(n: usize, d: usize, seed: u64) -> Self {
        Self {
            n,
            d,
            features: FeatureDist::Uniform {
                low: -1.0,
                high: 1.0,
            },
            signal_std: 1.0,
            seed,
        }
    }

    fn validate(&self) -> Result<()> {
        let positive = |name, v: usize| {
            if v == 0 {
                Err(DatasetError::InvalidArgument {
                    name,
                    value: 0.0,
                    constraint: "at least 1",
                })
            } else {
                Ok(())
            }
        };
        positive("n", self.n)?;
        positive("d", self.d)?;
        if self.n.checked_mul(self.d).is_none() {
            return Err(DatasetError::InvalidArgument {
                name: "n · d",
                value: self.n as f64 * self.d as f64,
                constraint: "n · d must fit in usize",
            });
        }
        if !(self.signal_std.is_finite() && self.signal_std > 0.0) {
            return Err(DatasetError::InvalidArgument {
                name: "signal_std",
                value: self.signal_std,
                constraint: "finite and > 0",
            });
        }
        self.features.validate()
    }
}

/// A planted dataset and the weights that generated it.
#[derive(Debug, Clone, PartialEq)]
pub struct Planted {
    /// The samples: `x` from the feature distribution, `y` from the model.
    pub dataset: Dataset,
    /// The planted weights `w*` (length `d`).
    pub w_star: Array1<f64>,
}

/// Uniform `f64` in `[0, 1)` with 53 random bits.
fn unit(rng: &mut ChaCha20Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Two independent standard normals (Box–Muller).
fn normal_pair(rng: &mut ChaCha20Rng) -> (f64, f64) {
    let u1 = 1.0 - unit(rng); // in (0, 1], so ln is finite
    let u2 = unit(rng);
    let r = (-2.0 * u1.ln()).sqrt();
    let (s, c) = (std::f64::consts::TAU * u2).sin_cos();
    (r * c, r * s)
}

fn fill_normal(rng: &mut ChaCha20Rng, out: &mut [f64], mean: f64, std: f64) {
    let mut chunks = out.chunks_exact_mut(2);
    for pair in &mut chunks {
        let (a, b) = normal_pair(rng);
        pair[0] = mean + std * a;
        pair[1] = mean + std * b;
    }
    if let [last] = chunks.into_remainder() {
        *last = mean + std * normal_pair(rng).0;
    }
}

fn stream(seed: u64, stream: u64) -> ChaCha20Rng {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

fn planted_weights(spec: &PlantedSpec) -> Array1<f64> {
    let mut w = vec![0.0; spec.d];
    fill_normal(&mut stream(spec.seed, 0), &mut w, 0.0, 1.0);
    let norm = w.iter().map(|v| v * v).sum::<f64>().sqrt();
    let scale = spec.signal_std / (spec.features.std() * norm);
    Array1::from_iter(w.into_iter().map(|v| v * scale))
}

/// Fills `x` (row-major `n × d`) and `y` block by block in parallel. `respond` maps
/// (noise-stream RNG, x·w*) to the target.
fn generate(
    spec: &PlantedSpec,
    w: &Array1<f64>,
    respond: impl Fn(&mut ChaCha20Rng, f64) -> f64 + Sync,
) -> (Array2<f64>, Array1<f64>) {
    let (n, d) = (spec.n, spec.d);
    let mut x = vec![0.0f64; n * d];
    let mut y = vec![0.0f64; n];
    let w = w.as_slice().expect("owned 1-D array is contiguous");
    x.par_chunks_mut(BLOCK_ROWS * d)
        .zip(y.par_chunks_mut(BLOCK_ROWS))
        .enumerate()
        .for_each(|(block, (xb, yb))| {
            let k = block as u64;
            let mut feat = stream(spec.seed, 2 * k + 1);
            let mut noise = stream(spec.seed, 2 * k + 2);
            match spec.features {
                FeatureDist::Uniform { low, high } => {
                    let width = high - low;
                    for v in xb.iter_mut() {
                        *v = low + width * unit(&mut feat);
                    }
                }
                FeatureDist::Normal { mean, std } => {
                    // Row by row, so a block's first rows do not depend on its length.
                    for row in xb.chunks_exact_mut(d) {
                        fill_normal(&mut feat, row, mean, std);
                    }
                }
            }
            for (row, yv) in xb.chunks_exact(d).zip(yb.iter_mut()) {
                let dot: f64 = row.iter().zip(w).map(|(a, b)| a * b).sum();
                *yv = respond(&mut noise, dot);
            }
        });
    (
        Array2::from_shape_vec((n, d), x).expect("n·d elements"),
        Array1::from(y),
    )
}

/// Planted linear regression: `y = X·w* + ε`, `ε ~ N(0, noise_std²)` i.i.d.
///
/// # Errors
/// [`DatasetError::InvalidArgument`] for `n` or `d` of 0, a negative or non-finite
/// `noise_std`, or invalid `signal_std` / feature parameters.
pub fn planted_linear(spec: &PlantedSpec, noise_std: f64) -> Result<Planted> {
    spec.validate()?;
    if !(noise_std.is_finite() && noise_std >= 0.0) {
        return Err(DatasetError::InvalidArgument {
            name: "noise_std",
            value: noise_std,
            constraint: "finite and >= 0",
        });
    }
    let w = planted_weights(spec);
    let (x, y) = generate(spec, &w, |rng, dot| {
        if noise_std == 0.0 {
            dot
        } else {
            dot + noise_std * normal_pair(rng).0
        }
    });
    let dataset = Dataset {
        name: format!("planted_linear_{}x{}", spec.n, spec.d),
        x,
        y,
        feature_names: Vec::new(),
        task: Task::Regression,
    };
    Ok(Planted { dataset, w_star: w })
}

/// Planted logistic model: `y ∈ {0, 1}` with `P(y = 1 | x) = σ(x·w*)`.
/// A larger `signal_std` makes the classes more separable.
///
/// # Errors
/// As [`planted_linear`] (without `noise_std`).
pub fn planted_logistic(spec: &PlantedSpec) -> Result<Planted> {
    spec.validate()?;
    let w = planted_weights(spec);
    let (x, y) = generate(spec, &w, |rng, dot| {
        let p = 1.0 / (1.0 + (-dot).exp());
        if unit(rng) < p {
            1.0
        } else {
            0.0
        }
    });
    let dataset = Dataset {
        name: format!("planted_logistic_{}x{}", spec.n, spec.d),
        x,
        y,
        feature_names: Vec::new(),
        task: Task::Classification {
            class_names: vec!["0".into(), "1".into()],
        },
    };
    Ok(Planted { dataset, w_star: w })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{s, Axis};

    /// Solves the symmetric positive-definite system `a·z = b` by Cholesky.
    fn solve_spd(a: &Array2<f64>, b: &Array1<f64>) -> Array1<f64> {
        let n = b.len();
        let mut l = Array2::<f64>::zeros((n, n));
        for i in 0..n {
            for j in 0..=i {
                let s: f64 = (0..j).map(|k| l[[i, k]] * l[[j, k]]).sum();
                if i == j {
                    l[[i, i]] = (a[[i, i]] - s).sqrt();
                } else {
                    l[[i, j]] = (a[[i, j]] - s) / l[[j, j]];
                }
            }
        }
        let mut z = Array1::<f64>::zeros(n);
        for i in 0..n {
            let s: f64 = (0..i).map(|k| l[[i, k]] * z[k]).sum();
            z[i] = (b[i] - s) / l[[i, i]];
        }
        let mut out = Array1::<f64>::zeros(n);
        for i in (0..n).rev() {
            let s: f64 = (i + 1..n).map(|k| l[[k, i]] * out[k]).sum();
            out[i] = (z[i] - s) / l[[i, i]];
        }
        out
    }

    #[test]
    fn least_squares_recovers_planted_weights() {
        let spec = PlantedSpec::new(4000, 8, 42);
        let p = planted_linear(&spec, 0.05).unwrap();
        let (x, y) = (&p.dataset.x, &p.dataset.y);
        assert_eq!(x.dim(), (4000, 8));
        let w_hat = solve_spd(&x.t().dot(x), &x.t().dot(y));
        // Standard error of each coefficient ≈ 0.05 / sqrt(4000 / 3) ≈ 0.0014.
        let err = (&w_hat - &p.w_star)
            .mapv(f64::abs)
            .fold(0.0f64, |a, &b| a.max(b));
        assert!(err < 0.01, "max |ŵ − w*| = {err}");
        // Residuals at w* have the planted noise level.
        let r = y - &x.dot(&p.w_star);
        let sd = (r.mapv(|v| v * v).mean().unwrap()).sqrt();
        assert!((sd - 0.05).abs() < 0.003, "noise sd {sd}");
        // Signal scaling: std of x·w* ≈ signal_std = 1.
        let sig = x.dot(&p.w_star);
        let m = sig.mean().unwrap();
        let ss = (sig.mapv(|v| (v - m) * (v - m)).mean().unwrap()).sqrt();
        assert!((ss - 1.0).abs() < 0.05, "signal sd {ss}");
        assert!(x.iter().all(|&v| (-1.0..1.0).contains(&v)));
    }

    #[test]
    fn normal_features_have_requested_moments() {
        let mut spec = PlantedSpec::new(3000, 5, 9);
        spec.features = FeatureDist::Normal {
            mean: 2.0,
            std: 0.5,
        };
        let p = planted_linear(&spec, 0.0).unwrap();
        let x = &p.dataset.x;
        let mean = x.mean().unwrap();
        let sd = (x.mapv(|v| (v - mean).powi(2)).mean().unwrap()).sqrt();
        assert!((mean - 2.0).abs() < 0.01, "{mean}");
        assert!((sd - 0.5).abs() < 0.01, "{sd}");
        // No noise: y is exactly X·w*.
        let r = &p.dataset.y - &x.dot(&p.w_star);
        assert!(r.iter().all(|v| v.abs() < 1e-12));
    }

    #[test]
    fn deterministic_prefix_stable_and_seed_dependent() {
        for features in [
            FeatureDist::Uniform {
                low: -1.0,
                high: 1.0,
            },
            FeatureDist::Normal {
                mean: 0.0,
                std: 1.0,
            },
        ] {
            let mut spec = PlantedSpec::new(700, 7, 5);
            spec.features = features;
            let a = planted_linear(&spec, 0.1).unwrap();
            let b = planted_linear(&spec, 0.1).unwrap();
            assert_eq!(a, b);
            let mut small = spec;
            small.n = 300;
            let c = planted_linear(&small, 0.1).unwrap();
            assert_eq!(c.w_star, a.w_star);
            assert_eq!(c.dataset.x, a.dataset.x.slice(s![..300, ..]));
            assert_eq!(c.dataset.y, a.dataset.y.slice(s![..300]));
            let mut other = spec;
            other.seed = 6;
            let d = planted_linear(&other, 0.1).unwrap();
            assert_ne!(d.w_star, a.w_star);
            assert_ne!(d.dataset.x, a.dataset.x);
        }
    }

    #[test]
    fn logistic_mle_recovers_planted_weights() {
        let mut spec = PlantedSpec::new(20_000, 4, 3);
        spec.signal_std = 3.0;
        let p = planted_logistic(&spec).unwrap();
        let (x, y) = (&p.dataset.x, &p.dataset.y);
        assert!(y.iter().all(|&v| v == 0.0 || v == 1.0));
        let frac1 = y.mean().unwrap();
        assert!((0.3..0.7).contains(&frac1), "{frac1}");
        // Newton's method on the log-likelihood.
        let mut w = Array1::<f64>::zeros(4);
        for _ in 0..25 {
            let prob = x.dot(&w).mapv(|z| 1.0 / (1.0 + (-z).exp()));
            let grad = x.t().dot(&(y - &prob));
            let wts = prob.mapv(|q| q * (1.0 - q));
            let xw = x * &wts.view().insert_axis(Axis(1));
            let hess = x.t().dot(&xw);
            w = &w + &solve_spd(&hess, &grad);
        }
        let err = (&w - &p.w_star)
            .mapv(f64::abs)
            .fold(0.0f64, |a, &b| a.max(b));
        assert!(err < 0.25, "max |ŵ − w*| = {err}, w* = {}", p.w_star);
        // The planted model classifies far better than chance.
        let acc = x
            .dot(&p.w_star)
            .iter()
            .zip(y)
            .filter(|(z, &t)| (**z > 0.0) == (t == 1.0))
            .count() as f64
            / 20_000.0;
        assert!(acc > 0.75, "{acc}");
    }

    #[test]
    fn mnist_sized_generation() {
        let p = planted_linear(&PlantedSpec::new(60_000, 784, 1), 0.1).unwrap();
        assert_eq!(p.dataset.x.dim(), (60_000, 784));
        assert_eq!(p.w_star.len(), 784);
        assert!(p.dataset.y.iter().all(|v| v.is_finite()));
        // The last (partial) block is filled, not left at zero.
        assert!(p.dataset.x.row(59_999).iter().any(|&v| v != 0.0));
    }

    #[test]
    fn invalid_specs_are_errors() {
        assert!(planted_linear(&PlantedSpec::new(0, 3, 0), 0.1).is_err());
        assert!(planted_linear(&PlantedSpec::new(3, 0, 0), 0.1).is_err());
        assert!(planted_linear(&PlantedSpec::new(3, 3, 0), -1.0).is_err());
        assert!(planted_linear(&PlantedSpec::new(3, 3, 0), f64::NAN).is_err());
        assert!(planted_linear(&PlantedSpec::new(usize::MAX, 2, 0), 0.1).is_err());
        let mut s = PlantedSpec::new(3, 3, 0);
        s.signal_std = 0.0;
        assert!(planted_logistic(&s).is_err());
        s.signal_std = 1.0;
        s.features = FeatureDist::Uniform {
            low: 1.0,
            high: 1.0,
        };
        assert!(planted_logistic(&s).is_err());
    }
}
