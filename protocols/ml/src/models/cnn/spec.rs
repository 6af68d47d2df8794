//! The CNN's architecture ([`CnnSpec`]), its parameters ([`CnnModel`]) and their files: a
//! JSON architecture beside a safetensors file of `f64` tensors.

use crate::error::{MlError, Result};
use ndarray::{Array1, Array2};
use rand::Rng;
use rand_chacha::rand_core::SeedableRng;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The activation after each of the two hidden layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CnnActivation {
    /// `x²` (CryptoNets, LoLa): one ciphertext product under CKKS.
    Square,
}

/// A CryptoNets-shaped network: one convolution (`maps` maps of `kernel × kernel`, stride
/// `stride`, `pad` zero rows and columns added at the top and left only, as CryptoNets pads
/// 28 × 28 to 29 × 29) → activation → dense `hidden` → activation → dense `classes`. The
/// scaled mean-pool layers of the paper are linear and folded into the dense layer.
///
/// **FFConv** (`rank: Some(r)`, the low-rank factorisation of Lu et al., "FFConv: Fast
/// Factorized Convolutional Neural Network Inference on Encrypted Data", 2021): the
/// `kernel × kernel` convolution has `r` maps, the activation applies to them, and a 1×1
/// convolution (`maps × r` plus a bias) mixes them into the `maps` maps the dense layer reads.
/// The activation sits *before* the mixing so that, under encryption, the mixing and the dense
/// layer are one linear map (`fc1 · (mix ⊗ I)`, [`crate::models::cnn::CnnModel::folded`]) and
/// the dense layer's input holds `r · positions` values instead of `maps · positions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CnnSpec {
    /// Model name (file stem).
    pub name: String,
    /// Input side (square images): 28 for MNIST.
    pub side: usize,
    /// Convolution kernel side.
    pub kernel: usize,
    /// Convolution stride.
    pub stride: usize,
    /// Zero padding at the top and the left.
    pub pad: usize,
    /// Convolution output maps.
    pub maps: usize,
    /// Hidden dense units.
    pub hidden: usize,
    /// Output classes.
    pub classes: usize,
    /// Activation of both hidden layers.
    pub activation: CnnActivation,
    /// FFConv: maps of the `kernel × kernel` convolution, mixed into `maps` by a 1×1
    /// convolution after the activation (`None`: a plain convolution of `maps` maps). Always
    /// serialized (`null` in JSON): the spec also crosses the party's links in bincode, which
    /// has no optional fields, so skipping it there would shorten the message.
    #[serde(default)]
    pub rank: Option<usize>,
}

impl CnnSpec {
    /// CryptoNets (Dowlin et al. 2016): 5 maps of 5 × 5, stride 2, padding 1 at the top and
    /// left (13 × 13 × 5 = 845 values), x², dense 100, x², dense 10.
    pub fn cryptonets() -> Self {
        Self {
            name: "mnist-cryptonets".into(),
            side: 28,
            kernel: 5,
            stride: 2,
            pad: 1,
            maps: 5,
            hidden: 100,
            classes: 10,
            activation: CnnActivation::Square,
            rank: None,
        }
    }

    /// A wider LoLa-style network: the same convolution with 16 maps, dense 100.
    pub fn wide() -> Self {
        Self {
            name: "mnist-wide".into(),
            maps: 16,
            ..Self::cryptonets()
        }
    }

    /// FFConv: the CryptoNets geometry with a rank-`rank` convolution mixed into `maps` maps
    /// (named `mnist-ffconv-r<rank>`).
    pub fn ffconv(rank: usize, maps: usize) -> Self {
        Self {
            name: format!("mnist-ffconv-r{rank}"),
            maps,
            rank: Some(rank),
            ..Self::cryptonets()
        }
    }

    /// Maps of the `kernel × kernel` convolution: `rank` for FFConv, else `maps`.
    pub fn conv_maps(&self) -> usize {
        self.rank.unwrap_or(self.maps)
    }

    /// The architecture of the equivalent plain network (FFConv's mixing folded into the dense
    /// layer: `conv_maps()` maps, no rank); a plain architecture is returned unchanged.
    pub fn folded(&self) -> Self {
        Self {
            maps: self.conv_maps(),
            rank: None,
            ..self.clone()
        }
    }

    /// Output side of the convolution.
    pub fn out_side(&self) -> usize {
        (self.side + self.pad - self.kernel) / self.stride + 1
    }

    /// Convolution output positions (`out_side²`).
    pub fn positions(&self) -> usize {
        self.out_side() * self.out_side()
    }

    /// Input pixels.
    pub fn pixels(&self) -> usize {
        self.side * self.side
    }

    /// Taps of one kernel (`kernel²`).
    pub fn taps(&self) -> usize {
        self.kernel * self.kernel
    }

    /// Values entering the first dense layer (`maps · positions`, map-major).
    pub fn features(&self) -> usize {
        self.maps * self.positions()
    }

    /// The input pixel tap `k` of output position `p` reads, or `None` in the padding.
    pub fn tap_source(&self, p: usize, k: usize) -> Option<usize> {
        let o = self.out_side();
        let (oy, ox) = (p / o, p % o);
        let (ky, kx) = (k / self.kernel, k % self.kernel);
        let y = (oy * self.stride + ky).checked_sub(self.pad)?;
        let x = (ox * self.stride + kx).checked_sub(self.pad)?;
        (y < self.side && x < self.side).then_some(y * self.side + x)
    }

    /// Checks that every size is positive and the kernel fits the padded input.
    ///
    /// # Errors
    /// [`MlError::InvalidHyper`] naming the field.
    pub fn validate(&self) -> Result<()> {
        let bad = |name, value: usize, reason| {
            Err(MlError::InvalidHyper {
                name,
                value: value.to_string(),
                reason,
            })
        };
        for (name, v) in [
            ("side", self.side),
            ("kernel", self.kernel),
            ("stride", self.stride),
            ("maps", self.maps),
            ("hidden", self.hidden),
            ("classes", self.classes),
            ("rank", self.conv_maps()),
        ] {
            if v == 0 {
                return bad(name, v, "must be positive");
            }
        }
        if self.kernel > self.side + self.pad {
            return bad("kernel", self.kernel, "larger than the padded input");
        }
        if self.pad >= self.kernel {
            return bad("pad", self.pad, "must be below the kernel side");
        }
        Ok(())
    }
}

/// A CNN's parameters, stored as the layers apply them (`y = W·x + b`, PyTorch's layout):
/// `conv_w` is `conv_maps × taps`, `mix` (FFConv only) `maps × rank` with its bias, `fc1_w`
/// is `hidden × features` (features map-major: `m·positions + p`), `fc2_w` is
/// `classes × hidden`.
#[derive(Debug, Clone, PartialEq)]
pub struct CnnModel {
    /// The architecture.
    pub spec: CnnSpec,
    /// Convolution kernels, `conv_maps × taps` (tap `ky·kernel + kx`).
    pub conv_w: Array2<f64>,
    /// Convolution biases, one per map.
    pub conv_b: Array1<f64>,
    /// FFConv's 1×1 mixing after the activation: weights `maps × rank` and biases (`None` for
    /// a plain network).
    pub mix: Option<(Array2<f64>, Array1<f64>)>,
    /// First dense layer, `hidden × features`.
    pub fc1_w: Array2<f64>,
    /// First dense biases.
    pub fc1_b: Array1<f64>,
    /// Output layer, `classes × hidden`.
    pub fc2_w: Array2<f64>,
    /// Output biases.
    pub fc2_b: Array1<f64>,
}

/// A tensor's name, shape and row-major values.
type Flat = (&'static str, Vec<usize>, Vec<f64>);

impl CnnModel {
    /// A freshly initialised model: weights normal with standard deviation `gain/√fan_in`
    /// (`gain` 0.5 keeps the squares of the first epochs small), biases 0; `seed` makes the
    /// start reproducible (initial weights are not secret). FFConv's mixing starts as a
    /// selection (map `m` reads conv map `m mod rank`, weight `√(rank/maps)`), so that the
    /// first steps see the plain rank-map network (a random mixing of the non-negative squares
    /// diverged at the default learning rate).
    ///
    /// # Errors
    /// An invalid spec.
    pub fn init(spec: CnnSpec, seed: u64) -> Result<Self> {
        spec.validate()?;
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
        let mut normal = |r: usize, c: usize, gain: f64| {
            let sd = gain / (c as f64).sqrt();
            Array2::from_shape_simple_fn((r, c), || {
                // Box–Muller from two uniforms.
                let u: f64 = rng.gen_range(f64::EPSILON..1.0);
                let v: f64 = rng.gen();
                sd * (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
            })
        };
        let conv_w = normal(spec.conv_maps(), spec.taps(), 1.0);
        let mix = spec.rank.map(|r| {
            let w = (r as f64 / spec.maps as f64).sqrt();
            let sel =
                Array2::from_shape_fn((spec.maps, r), |(m, j)| if m % r == j { w } else { 0.0 });
            (sel, Array1::zeros(spec.maps))
        });
        Ok(Self {
            conv_w,
            conv_b: Array1::zeros(spec.conv_maps()),
            mix,
            fc1_w: normal(spec.hidden, spec.features(), 0.5),
            fc1_b: Array1::zeros(spec.hidden),
            fc2_w: normal(spec.classes, spec.hidden, 0.5),
            fc2_b: Array1::zeros(spec.classes),
            spec,
        })
    }

    /// Number of trainable values.
    pub fn parameter_count(&self) -> usize {
        self.flat().iter().map(|(_, _, v)| v.len()).sum()
    }

    /// The equivalent plain network of an FFConv model: the 1×1 mixing `M` (`maps × rank`,
    /// bias `c`) and the dense layer `W1` (`hidden × maps·P`) are consecutive linear maps, so
    /// `W1·(M ⊗ I_P)` (`hidden × rank·P`) and `b1 + W1·(c ⊗ 1_P)` give exactly the same
    /// outputs (up to `f64` rounding). A plain model is returned unchanged.
    pub fn folded(&self) -> Self {
        let Some((mw, mb)) = &self.mix else {
            return self.clone();
        };
        let sp = &self.spec;
        let (np, r) = (sp.positions(), sp.conv_maps());
        let mut w1 = Array2::zeros((sp.hidden, r * np));
        let mut b1 = self.fc1_b.clone();
        for h in 0..sp.hidden {
            for m in 0..sp.maps {
                for p in 0..np {
                    let w = self.fc1_w[[h, m * np + p]];
                    b1[h] += w * mb[m];
                    for j in 0..r {
                        w1[[h, j * np + p]] += w * mw[[m, j]];
                    }
                }
            }
        }
        Self {
            spec: sp.folded(),
            conv_w: self.conv_w.clone(),
            conv_b: self.conv_b.clone(),
            mix: None,
            fc1_w: w1,
            fc1_b: b1,
            fc2_w: self.fc2_w.clone(),
            fc2_b: self.fc2_b.clone(),
        }
    }

    /// The architecture as pretty JSON.
    pub fn spec_json(&self) -> String {
        serde_json::to_string_pretty(&self.spec).expect("spec serializes")
    }

    fn flat(&self) -> Vec<Flat> {
        let v2 = |n, a: &Array2<f64>| (n, a.shape().to_vec(), a.iter().copied().collect());
        let v1 = |n, a: &Array1<f64>| (n, vec![a.len()], a.to_vec());
        let mut out = vec![
            v2("conv.weight", &self.conv_w),
            v1("conv.bias", &self.conv_b),
        ];
        if let Some((w, b)) = &self.mix {
            out.extend([v2("mix.weight", w), v1("mix.bias", b)]);
        }
        out.extend([
            v2("fc1.weight", &self.fc1_w),
            v1("fc1.bias", &self.fc1_b),
            v2("fc2.weight", &self.fc2_w),
            v1("fc2.bias", &self.fc2_b),
        ]);
        out
    }

    /// All tensors as safetensors bytes (F64, names as in PyTorch: `conv.weight`, …, and
    /// `mix.weight`, `mix.bias` for FFConv).
    ///
    /// # Errors
    /// A serialization error of the safetensors crate.
    pub fn to_safetensors_bytes(&self) -> Result<Vec<u8>> {
        let flat = self.flat();
        let bytes: Vec<Vec<u8>> = flat
            .iter()
            .map(|(_, _, v)| v.iter().flat_map(|x| x.to_le_bytes()).collect())
            .collect();
        let mut views = Vec::new();
        for ((name, shape, _), b) in flat.iter().zip(&bytes) {
            let view = TensorView::new(Dtype::F64, shape.clone(), b).map_err(st_err)?;
            views.push((name.to_string(), view));
        }
        let meta = HashMap::from([("format".to_string(), "dyad-cnn".to_string())]);
        safetensors::serialize(views, &Some(meta)).map_err(st_err)
    }

    /// A model from its JSON architecture and safetensors weights, checking every tensor's
    /// name, dtype (F64), shape and finiteness.
    ///
    /// # Errors
    /// [`MlError::Unsupported`] naming the tensor and what is wrong.
    pub fn from_json_and_safetensors(json: &str, weights: &[u8]) -> Result<Self> {
        let spec: CnnSpec = serde_json::from_str(json).map_err(|e| MlError::Unsupported {
            what: "CNN architecture JSON",
            value: e.to_string(),
            reason: "expected the fields of CnnSpec",
        })?;
        let mut model = Self::init(spec, 0)?;
        let st = SafeTensors::deserialize(weights).map_err(st_err)?;
        let mut values = Vec::new();
        for (name, shape, _) in model.flat() {
            let view = st.tensor(name).map_err(st_err)?;
            let bad = |reason| MlError::Unsupported {
                what: "CNN tensor",
                value: format!("{name} {:?} {:?}", view.dtype(), view.shape()),
                reason,
            };
            if view.dtype() != Dtype::F64 {
                return Err(bad("dtype must be F64"));
            }
            if view.shape() != shape.as_slice() {
                return Err(bad("shape differs from the architecture's"));
            }
            let v: Vec<f64> = view
                .data()
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
                .collect();
            if v.iter().any(|x| !x.is_finite()) {
                return Err(bad("holds a non-finite value"));
            }
            values.push(v);
        }
        model.set_flat(values);
        Ok(model)
    }

    /// Overwrites the tensors with `values` in the order of `flat` (shapes already checked).
    fn set_flat(&mut self, values: Vec<Vec<f64>>) {
        let mut it = values.into_iter();
        let mut next = || it.next().expect("one value vector per tensor");
        let fill2 = |a: &mut Array2<f64>, v: Vec<f64>| {
            *a = Array2::from_shape_vec(a.dim(), v).expect("shape checked");
        };
        fill2(&mut self.conv_w, next());
        self.conv_b = Array1::from(next());
        if let Some((w, b)) = self.mix.as_mut() {
            fill2(w, next());
            *b = Array1::from(next());
        }
        fill2(&mut self.fc1_w, next());
        self.fc1_b = Array1::from(next());
        fill2(&mut self.fc2_w, next());
        self.fc2_b = Array1::from(next());
    }
}

fn st_err(e: safetensors::SafeTensorError) -> MlError {
    MlError::Unsupported {
        what: "safetensors file",
        value: e.to_string(),
        reason: "expected the tensors conv.weight, conv.bias, [mix.weight, mix.bias,] fc1.weight, fc1.bias, fc2.weight, fc2.bias",
    }
}
