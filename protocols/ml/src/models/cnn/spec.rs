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
/// `conv_w` is `maps × taps`, `fc1_w` is `hidden × features` (features map-major:
/// `m·positions + p`), `fc2_w` is `classes × hidden`.
#[derive(Debug, Clone, PartialEq)]
pub struct CnnModel {
    /// The architecture.
    pub spec: CnnSpec,
    /// Convolution kernels, `maps × taps` (tap `ky·kernel + kx`).
    pub conv_w: Array2<f64>,
    /// Convolution biases, one per map.
    pub conv_b: Array1<f64>,
    /// First dense layer, `hidden × features`.
    pub fc1_w: Array2<f64>,
    /// First dense biases.
    pub fc1_b: Array1<f64>,
    /// Output layer, `classes × hidden`.
    pub fc2_w: Array2<f64>,
    /// Output biases.
    pub fc2_b: Array1<f64>,
}

const TENSORS: [&str; 6] = [
    "conv.weight",
    "conv.bias",
    "fc1.weight",
    "fc1.bias",
    "fc2.weight",
    "fc2.bias",
];

impl CnnModel {
    /// A freshly initialised model: weights normal with standard deviation `gain/√fan_in`
    /// (`gain` 0.5 keeps the squares of the first epochs small), biases 0; `seed` makes the
    /// start reproducible (initial weights are not secret).
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
        Ok(Self {
            conv_w: normal(spec.maps, spec.taps(), 1.0),
            conv_b: Array1::zeros(spec.maps),
            fc1_w: normal(spec.hidden, spec.features(), 0.5),
            fc1_b: Array1::zeros(spec.hidden),
            fc2_w: normal(spec.classes, spec.hidden, 0.5),
            fc2_b: Array1::zeros(spec.classes),
            spec,
        })
    }

    /// Number of trainable values.
    pub fn parameter_count(&self) -> usize {
        self.conv_w.len()
            + self.conv_b.len()
            + self.fc1_w.len()
            + self.fc1_b.len()
            + self.fc2_w.len()
            + self.fc2_b.len()
    }

    /// The architecture as pretty JSON.
    pub fn spec_json(&self) -> String {
        serde_json::to_string_pretty(&self.spec).expect("spec serializes")
    }

    fn flat(&self) -> [(Vec<usize>, Vec<f64>); 6] {
        let v2 = |a: &Array2<f64>| (a.shape().to_vec(), a.iter().copied().collect());
        let v1 = |a: &Array1<f64>| (vec![a.len()], a.to_vec());
        [
            v2(&self.conv_w),
            v1(&self.conv_b),
            v2(&self.fc1_w),
            v1(&self.fc1_b),
            v2(&self.fc2_w),
            v1(&self.fc2_b),
        ]
    }

    /// All tensors as safetensors bytes (F64, names as in PyTorch: `conv.weight`, …).
    ///
    /// # Errors
    /// A serialization error of the safetensors crate.
    pub fn to_safetensors_bytes(&self) -> Result<Vec<u8>> {
        let flat = self.flat();
        let bytes: Vec<Vec<u8>> = flat
            .iter()
            .map(|(_, v)| v.iter().flat_map(|x| x.to_le_bytes()).collect())
            .collect();
        let mut views = Vec::new();
        for ((name, (shape, _)), b) in TENSORS.iter().zip(&flat).zip(&bytes) {
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
        let shapes: Vec<Vec<usize>> = model.flat().iter().map(|(s, _)| s.clone()).collect();
        let mut values = Vec::new();
        for (name, shape) in TENSORS.iter().zip(&shapes) {
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
        let mut it = values.into_iter().zip(shapes);
        let mut next = || it.next().expect("6 tensors");
        let m2 = |(v, s): (Vec<f64>, Vec<usize>)| {
            Array2::from_shape_vec((s[0], s[1]), v).expect("shape checked")
        };
        model.conv_w = m2(next());
        model.conv_b = Array1::from(next().0);
        model.fc1_w = m2(next());
        model.fc1_b = Array1::from(next().0);
        model.fc2_w = m2(next());
        model.fc2_b = Array1::from(next().0);
        Ok(model)
    }
}

fn st_err(e: safetensors::SafeTensorError) -> MlError {
    MlError::Unsupported {
        what: "safetensors file",
        value: e.to_string(),
        reason: "expected the tensors conv.weight, conv.bias, fc1.weight, fc1.bias, fc2.weight, fc2.bias",
    }
}
