//! Named tensor storage for the ST-GCN and its safetensors (de)serialisation (bytes in, bytes
//! out: this crate opens no files).

use std::collections::HashMap;

use ndarray::{ArrayD, IxDyn};
use safetensors::{tensor::TensorView, Dtype, SafeTensors};

use super::{ModelError, Result};

/// What a tensor is, which decides how the optimiser treats it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TensorRole {
    /// Convolution / dense weight: trained, with weight decay.
    Weight,
    /// Other trainable tensor (biases, BN affine, edge importance, activation coefficients):
    /// trained without weight decay.
    Trainable,
    /// Batch-norm running statistics: updated by forward passes in training mode, not trained.
    Buffer,
}

/// One named tensor of the model.
#[derive(Clone, Debug)]
pub struct NamedTensor {
    /// Name, see the table in the crate docs.
    pub name: String,
    /// Value.
    pub value: ArrayD<f64>,
    /// Role.
    pub role: TensorRole,
}

/// All tensors of a model, in a fixed order (the order layers were created).
#[derive(Clone, Debug, Default)]
pub(crate) struct ParamStore {
    pub(crate) tensors: Vec<NamedTensor>,
}

impl ParamStore {
    pub(crate) fn add(&mut self, name: String, value: ArrayD<f64>, role: TensorRole) -> usize {
        self.tensors.push(NamedTensor { name, value, role });
        self.tensors.len() - 1
    }

    pub(crate) fn get(&self, i: usize) -> &ArrayD<f64> {
        &self.tensors[i].value
    }

    pub(crate) fn index_of(&self, name: &str) -> Option<usize> {
        self.tensors.iter().position(|t| t.name == name)
    }

    /// Serialises every tensor as little-endian F64.
    pub(crate) fn to_safetensors_bytes(
        &self,
        metadata: Option<HashMap<String, String>>,
    ) -> Result<Vec<u8>> {
        let bytes: Vec<Vec<u8>> = self
            .tensors
            .iter()
            .map(|t| t.value.iter().flat_map(|x| x.to_le_bytes()).collect())
            .collect();
        let mut views = Vec::with_capacity(self.tensors.len());
        for (t, b) in self.tensors.iter().zip(&bytes) {
            views.push((
                t.name.clone(),
                TensorView::new(Dtype::F64, t.value.shape().to_vec(), b)?,
            ));
        }
        Ok(safetensors::serialize(views, &metadata)?)
    }

    /// Replaces every tensor by the one of the same name in `bytes`, checking names, shapes,
    /// dtypes and finiteness before changing anything.
    pub(crate) fn load_safetensors_bytes(&mut self, bytes: &[u8]) -> Result<()> {
        let st = SafeTensors::deserialize(bytes)?;
        for name in st.names() {
            if self.index_of(name).is_none() && !name.ends_with("num_batches_tracked") {
                return Err(ModelError::UnknownTensor {
                    tensor: name.clone(),
                });
            }
        }
        let mut loaded = Vec::with_capacity(self.tensors.len());
        for t in &self.tensors {
            let view = match st.tensor(&t.name) {
                Ok(v) => v,
                Err(safetensors::SafeTensorError::TensorNotFound(_)) => {
                    return Err(ModelError::MissingTensor {
                        tensor: t.name.clone(),
                    })
                }
                Err(e) => return Err(e.into()),
            };
            let expected = t.value.shape();
            let found = view.shape();
            // Accept PyTorch's trailing singleton kernel dimensions, e.g. (Co, Ci, 1, 1).
            let compatible = found.len() >= expected.len()
                && found[..expected.len()] == *expected
                && found[expected.len()..].iter().all(|&d| d == 1);
            if !compatible {
                return Err(ModelError::ShapeMismatch {
                    tensor: t.name.clone(),
                    expected: expected.to_vec(),
                    found: found.to_vec(),
                });
            }
            let data: Vec<f64> = match view.dtype() {
                Dtype::F64 => view
                    .data()
                    .chunks_exact(8)
                    .map(|c| f64::from_le_bytes(c.try_into().expect("chunk of 8")))
                    .collect(),
                Dtype::F32 => view
                    .data()
                    .chunks_exact(4)
                    .map(|c| f64::from(f32::from_le_bytes(c.try_into().expect("chunk of 4"))))
                    .collect(),
                other => {
                    return Err(ModelError::UnsupportedDtype {
                        tensor: t.name.clone(),
                        dtype: format!("{other:?}"),
                    })
                }
            };
            if let Some(index) = data.iter().position(|x| !x.is_finite()) {
                return Err(ModelError::NonFiniteTensor {
                    tensor: t.name.clone(),
                    index,
                });
            }
            let arr = ArrayD::from_shape_vec(IxDyn(expected), data).map_err(|_| {
                ModelError::ShapeMismatch {
                    tensor: t.name.clone(),
                    expected: expected.to_vec(),
                    found: found.to_vec(),
                }
            })?;
            loaded.push(arr);
        }
        for (t, arr) in self.tensors.iter_mut().zip(loaded) {
            t.value = arr;
        }
        Ok(())
    }
}
