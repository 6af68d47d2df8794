//! The client's side of a CNN query (`hecnn`): check what the party announces for a CNN
//! ([`check_cnn`], called by [`super::params_for`]), unfold and encrypt one image in the
//! announced layout ([`encrypt_image`]). The client needs the public architecture only; the
//! unfolding is `hecnn::LolaClient`'s, the same the party's compiled model expects.

use super::msg::{CnnInfo, ModelInfo};
use super::{InferError, Result};
use ckks::{CkksParams, SecretKey};
use hecnn::{LayoutKind, LolaClient, LOLA_DEPTH};

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
    if cnn.layout != LayoutKind::Lola {
        return Err(InferError::UnsupportedLayout {
            layout: cnn.layout.name(),
        });
    }
    let sp = &cnn.spec;
    if sp.side > MAX_SIDE || sp.kernel > sp.side {
        return Err(bad("image side (at most)", MAX_SIDE, sp.side));
    }
    if sp.taps() > super::msg::MAX_REQUEST_CTS {
        return Err(bad("kernel taps", super::msg::MAX_REQUEST_CTS, sp.taps()));
    }
    if info.input_level as usize != LOLA_DEPTH {
        return Err(bad("input level", LOLA_DEPTH, info.input_level as usize));
    }
    if info.class_names.len() != sp.classes {
        return Err(bad("class names", sp.classes, info.class_names.len()));
    }
    if info.input_affine.is_some() {
        return Err(bad("input affine map entries", 0, 1));
    }
    LolaClient::new(sp, params)?;
    Ok(())
}

/// Encrypts one image (`side²` pixels in `[0, 1]`, row-major) for a CNN served in the LoLa
/// layout: one ciphertext per kernel tap, under `sk` (seeded), serialized in tap order.
///
/// # Errors
/// [`InferError::BadInfo`] for a model that is no CNN; [`InferError::Cnn`] for a wrong pixel
/// count or a pixel outside `[0, 1]`; CKKS errors.
pub fn encrypt_image(
    info: &ModelInfo,
    params: &CkksParams,
    sk: &SecretKey,
    image: &[f64],
) -> Result<Vec<Vec<u8>>> {
    let cnn = info.cnn.as_ref().ok_or(bad("CNN architecture", 1, 0))?;
    let client = LolaClient::new(&cnn.spec, params)?;
    let img = client.encrypt_image_symmetric(sk, image)?;
    img.taps.iter().map(|c| Ok(c.to_bytes(params)?)).collect()
}
