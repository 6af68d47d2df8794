//! The `.npy` writer: little-endian, C-order files whose header is padded so the data starts on
//! a 64-byte boundary (format 1.0, or 2.0 when the header does not fit 1.0's 16-bit length).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use ndarray::{ArrayBase, Data, Dimension};

use super::{Dtype, NpyElement, MAGIC};
use crate::error::{DatasetError, Result};
use crate::io::display;

/// Serializes an array to `.npy` bytes (little-endian, C order, version 1.0 unless the header
/// needs 2.0).
pub fn to_npy_bytes<T, S, D>(arr: &ArrayBase<S, D>) -> Vec<u8>
where
    T: NpyElement,
    S: Data<Elem = T>,
    D: Dimension,
{
    let mut out = header_bytes(T::DTYPE, arr.shape());
    out.reserve(arr.len() * T::DTYPE.size());
    // `iter` walks in logical (C) order whatever the memory layout.
    for &v in arr.iter() {
        v.encode_le(&mut out);
    }
    out
}

/// Writes an array as a `.npy` file (little-endian, C order).
///
/// # Errors
/// [`DatasetError::Io`] naming the file.
pub fn write_npy<T, S, D>(path: &Path, arr: &ArrayBase<S, D>) -> Result<()>
where
    T: NpyElement,
    S: Data<Elem = T>,
    D: Dimension,
{
    let name = display(path);
    let file = File::create(path).map_err(|e| DatasetError::io(&name, e))?;
    let mut w = BufWriter::with_capacity(1 << 16, file);
    let io = |e| DatasetError::io(&name, e);
    w.write_all(&header_bytes(T::DTYPE, arr.shape()))
        .map_err(io)?;
    let mut chunk = Vec::with_capacity(1 << 16);
    for &v in arr.iter() {
        v.encode_le(&mut chunk);
        if chunk.len() >= (1 << 16) - 8 {
            w.write_all(&chunk).map_err(io)?;
            chunk.clear();
        }
    }
    w.write_all(&chunk).map_err(io)?;
    w.flush().map_err(io)
}

/// Magic, version, length and the space-padded header dict, 64-byte aligned.
fn header_bytes(dtype: Dtype, shape: &[usize]) -> Vec<u8> {
    let dims = match shape {
        [d] => format!("({d},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let dict = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {dims}, }}",
        dtype.descr()
    );
    // Total header size, padded so the data starts on a 64-byte boundary.
    let padded =
        |len_bytes: usize| (MAGIC.len() + 2 + len_bytes + dict.len() + 1).div_ceil(64) * 64;
    let v1_len = padded(2) - (MAGIC.len() + 4);
    let (version, len_bytes) = if v1_len <= usize::from(u16::MAX) {
        (1u8, 2usize)
    } else {
        (2u8, 4usize)
    };
    let prefix = MAGIC.len() + 2 + len_bytes;
    let total = padded(len_bytes);
    let header_len = total - prefix;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[version, 0]);
    if len_bytes == 2 {
        out.extend_from_slice(&(header_len as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&(header_len as u32).to_le_bytes());
    }
    out.extend_from_slice(dict.as_bytes());
    out.resize(total - 1, b' ');
    out.push(b'\n');
    out
}
