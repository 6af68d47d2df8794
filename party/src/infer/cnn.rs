//! The client's side of a CNN query (`hecnn`): check what the party announces for a CNN
//! ([`check_cnn`], called by [`super::params_for`]), encrypt images in the announced layout
//! ([`encrypt_images`]: one image unfolded into tap ciphertexts for LoLa, a batch packed one
//! image per slot for CryptoNets, a batch packed one image per 1,024-slot block of one
//! ciphertext for the matrix layout), decrypt the logits of every image ([`decrypt_logits`]).
//! The client needs the public architecture only; the packing is `hecnn`'s (`LolaClient`,
//! `encrypt_batch_symmetric`, `MatrixClient`), the same the party's compiled model expects.

use super::msg::{CnnInfo, ModelInfo};
use super::{InferError, Result};
use ckks::{CkksParams, SecretKey};
use hecnn::{LayoutKind, LolaClient, MatrixClient, BATCH_DEPTH, LOLA_DEPTH, MATRIX_DEPTH};
use ndarray::ArrayView2;

/// Largest image side a client accepts in an announced architecture.
pub const MAX_SIDE: usize = 1024;

fn bad(what: &'static str, expected: usize, found: usize) -> InferError {
    InferError::BadInfo {
        what,
        expected: expected as u64,
        found: found as u64,
    }
}

/// Checks the CNN part of `info` under `params`: a layout this client encrypts for, a valid
/// architecture of bounded size whose features fit one ciphertext, the layout's input level,
/// one class name per class and no ST-GCN input map.
///
/// # Errors
/// [`InferError::BadInfo`] naming the field; [`InferError::Cnn`] for an architecture
/// `hecnn` refuses.
pub fn check_cnn(info: &ModelInfo, cnn: &CnnInfo, params: &CkksParams) -> Result<()> {
    let depth = match cnn.layout {
        LayoutKind::Lola => LOLA_DEPTH,
        LayoutKind::Batch => BATCH_DEPTH,
        LayoutKind::Matrix => MATRIX_DEPTH,
        other => {
            return Err(InferError::UnsupportedLayout {
                layout: other.name(),
            })
        }
    };
    let sp = &cnn.spec;
    if sp.side > MAX_SIDE || sp.kernel > sp.side {
        return Err(bad("image side (at most)", MAX_SIDE, sp.side));
    }
    if cnn.input_cts() > super::msg::MAX_REQUEST_CTS {
        return Err(bad(
            "input ciphertexts",
            super::msg::MAX_REQUEST_CTS,
            cnn.input_cts(),
        ));
    }
    if info.input_level as usize != depth {
        return Err(bad("input level", depth, info.input_level as usize));
    }
    if info.class_names.len() != sp.classes {
        return Err(bad("class names", sp.classes, info.class_names.len()));
    }
    if info.input_affine.is_some() {
        return Err(bad("input affine map entries", 0, 1));
    }
    match cnn.layout {
        LayoutKind::Lola => drop(LolaClient::new(sp, params)?),
        LayoutKind::Matrix => drop(MatrixClient::new(sp, params)?),
        _ => {}
    }
    Ok(())
}

/// Encrypts `images` (`n × side²`, pixels in `[0, 1]`, row-major) for a served CNN under `sk`
/// (seeded), serialized in the layout's order: LoLa takes one image (one ciphertext per kernel
/// tap), the batch layout up to `N/2` (one ciphertext per pixel, image `j` in slot `j`), the
/// matrix layout up to `N/2 / 1024` (one ciphertext, image `n` in block `n`).
///
/// # Errors
/// [`InferError::BadInfo`] for a model that is no CNN; [`InferError::Shape`] for more than one
/// image in the LoLa layout; [`InferError::Cnn`] for a wrong pixel count, a pixel outside
/// `[0, 1]` or too many images; CKKS errors.
pub fn encrypt_images(
    info: &ModelInfo,
    params: &CkksParams,
    sk: &SecretKey,
    images: ArrayView2<'_, f64>,
) -> Result<Vec<Vec<u8>>> {
    let cnn = cnn_of(info)?;
    let cts = match cnn.layout {
        LayoutKind::Batch => {
            hecnn::batch::encrypt_batch_symmetric(&cnn.spec, params, sk, images)?.pixels
        }
        LayoutKind::Matrix => {
            let client = MatrixClient::new(&cnn.spec, params)?;
            vec![client.encrypt_symmetric(sk, images)?.ct]
        }
        _ => {
            if images.nrows() != 1 {
                return Err(InferError::Shape {
                    what: "images of a LoLa request",
                    expected: 1,
                    found: images.nrows(),
                });
            }
            let row = images.row(0).to_vec();
            let client = LolaClient::new(&cnn.spec, params)?;
            client.encrypt_image_symmetric(sk, &row)?.taps
        }
    };
    cts.iter().map(|c| Ok(c.to_bytes(params)?)).collect()
}

/// Decrypts a CNN reply into the logits of each of the `images` images sent: LoLa reads the
/// class scores at `positions`; the batch layout reads image `j`'s class `c` in slot `j` of
/// ciphertext `c`; the matrix layout image `n`'s class `c` in slot `n·block + c` of its one
/// ciphertext.
///
/// # Errors
/// [`InferError::BadInfo`] for a reply of the wrong ciphertext count, a position outside the
/// ciphertexts, or more images than slots; CKKS errors.
pub fn decrypt_logits(
    info: &ModelInfo,
    params: &CkksParams,
    sk: &SecretKey,
    cts: &[Vec<u8>],
    positions: &[(u32, u32)],
    images: usize,
) -> Result<Vec<Vec<f64>>> {
    let cnn = cnn_of(info)?;
    if cnn.layout == LayoutKind::Matrix {
        if cts.len() != 1 {
            return Err(bad("logit ciphertexts (matrix layout)", 1, cts.len()));
        }
        let client = MatrixClient::new(&cnn.spec, params)?;
        let dec = super::decrypt_slots(params, sk, cts)?;
        let logits = client.read_logits(&dec[0], images)?;
        return Ok(logits.outer_iter().map(|r| r.to_vec()).collect());
    }
    if cnn.layout != LayoutKind::Batch {
        return Ok(vec![super::decrypt_logits(params, sk, cts, positions)?]);
    }
    let classes = cnn.spec.classes;
    if cts.len() != classes {
        return Err(bad("logit ciphertexts (one per class)", classes, cts.len()));
    }
    if images > params.slots() {
        return Err(bad("images (at most the slots)", params.slots(), images));
    }
    let dec = super::decrypt_slots(params, sk, cts)?;
    Ok((0..images)
        .map(|j| dec.iter().map(|c| c[j]).collect())
        .collect())
}

/// The CNN part of `info`, or the error that the model is no CNN.
fn cnn_of(info: &ModelInfo) -> Result<&CnnInfo> {
    info.cnn.as_ref().ok_or(bad("CNN architecture", 1, 0))
}
