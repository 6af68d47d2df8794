//! A minimal reader and writer of NumPy `.npy` files (format versions 1.0–3.0, NumPy's
//! `format.py` specification): little-endian, C-order arrays of `f32`, `f64`, `i32` or `i64` —
//! what the ST-GCN / 2s-AGCN `(N, C, T, V, M)` data files and their label arrays use.
//! Big-endian, Fortran-order, object and structured arrays are rejected.

use std::path::Path;

use ndarray::{ArrayD, ArrayViewD, IxDyn};

use super::{Result, SkeletonError};

const MAGIC: &[u8] = b"\x93NUMPY";

/// The element array of a `.npy` file.
#[derive(Debug, Clone, PartialEq)]
pub enum NpyArray {
    /// `<f4`
    F32(ArrayD<f32>),
    /// `<f8`
    F64(ArrayD<f64>),
    /// `<i4`
    I32(ArrayD<i32>),
    /// `<i8`
    I64(ArrayD<i64>),
}

impl NpyArray {
    /// The shape.
    pub fn shape(&self) -> &[usize] {
        match self {
            NpyArray::F32(a) => a.shape(),
            NpyArray::F64(a) => a.shape(),
            NpyArray::I32(a) => a.shape(),
            NpyArray::I64(a) => a.shape(),
        }
    }

    /// The values as `f32` (`f64` and integers are converted with `as`).
    pub fn into_f32(self) -> ArrayD<f32> {
        match self {
            NpyArray::F32(a) => a,
            NpyArray::F64(a) => a.mapv(|v| v as f32),
            NpyArray::I32(a) => a.mapv(|v| v as f32),
            NpyArray::I64(a) => a.mapv(|v| v as f32),
        }
    }

    /// The values as `i64` if the array holds integers.
    pub fn into_i64(self) -> Option<ArrayD<i64>> {
        match self {
            NpyArray::I32(a) => Some(a.mapv(i64::from)),
            NpyArray::I64(a) => Some(a),
            _ => None,
        }
    }
}

/// Element types the writer supports.
pub trait NpyElement: Copy {
    /// The `descr` string.
    const DESCR: &'static str;
    /// Appends the little-endian bytes of `self`.
    fn put_le(self, out: &mut Vec<u8>);
}

impl NpyElement for f32 {
    const DESCR: &'static str = "<f4";
    fn put_le(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}

impl NpyElement for f64 {
    const DESCR: &'static str = "<f8";
    fn put_le(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}

impl NpyElement for i64 {
    const DESCR: &'static str = "<i8";
    fn put_le(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}

fn npy_err(file: &str, offset: usize, reason: &'static str, found: &str) -> SkeletonError {
    SkeletonError::Npy {
        file: file.to_string(),
        offset,
        reason,
        found: found.chars().take(80).collect(),
    }
}

/// Value of `'key':` in the header dictionary (up to the next top-level comma or brace).
fn dict_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let k = header.find(&format!("'{key}'"))?;
    let rest = header[k + key.len() + 2..].trim_start().strip_prefix(':')?;
    let rest = rest.trim_start();
    let end = if rest.starts_with('(') {
        rest.find(')')? + 1
    } else {
        rest.find([',', '}']).unwrap_or(rest.len())
    };
    Some(rest[..end].trim())
}

/// Parses `.npy` bytes; `file` names the source in errors.
pub fn parse_npy(bytes: &[u8], file: &str) -> Result<NpyArray> {
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err(npy_err(
            file,
            0,
            "not a .npy file (bad magic)",
            &format!("{:?}", &bytes[..bytes.len().min(6)]),
        ));
    }
    let major = bytes[6];
    let (header_len, header_start) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err(npy_err(file, 8, "truncated header length", ""));
            }
            (
                u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
                12,
            )
        }
        v => {
            return Err(npy_err(
                file,
                6,
                "unsupported format version",
                &v.to_string(),
            ))
        }
    };
    let data_start = header_start + header_len;
    if bytes.len() < data_start {
        return Err(npy_err(
            file,
            header_start,
            "header longer than the file",
            &header_len.to_string(),
        ));
    }
    let header = std::str::from_utf8(&bytes[header_start..data_start])
        .map_err(|_| npy_err(file, header_start, "header is not text", ""))?;
    let descr = dict_value(header, "descr")
        .ok_or_else(|| npy_err(file, header_start, "header without 'descr'", header))?
        .trim_matches(|c| c == '\'' || c == '"');
    let fortran = dict_value(header, "fortran_order")
        .ok_or_else(|| npy_err(file, header_start, "header without 'fortran_order'", header))?;
    if fortran != "False" {
        return Err(npy_err(
            file,
            header_start,
            "Fortran-order arrays are not supported",
            fortran,
        ));
    }
    let shape_text = dict_value(header, "shape")
        .ok_or_else(|| npy_err(file, header_start, "header without 'shape'", header))?;
    let shape = shape_text
        .trim_start_matches('(')
        .trim_end_matches(')')
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.trim_end_matches('L')
                .parse::<usize>()
                .map_err(|_| npy_err(file, header_start, "bad dimension in 'shape'", shape_text))
        })
        .collect::<Result<Vec<usize>>>()?;
    let count = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| npy_err(file, header_start, "shape overflows", shape_text))?;
    let size = match descr {
        "<f4" | "<i4" => 4,
        "<f8" | "<i8" => 8,
        other => {
            return Err(npy_err(
                file,
                header_start,
                "unsupported dtype (need little-endian <f4, <f8, <i4 or <i8)",
                other,
            ))
        }
    };
    let need = count
        .checked_mul(size)
        .ok_or_else(|| npy_err(file, header_start, "shape overflows", shape_text))?;
    let data = &bytes[data_start..];
    if data.len() != need {
        return Err(npy_err(
            file,
            data_start,
            "data length does not match the shape",
            &format!("{} bytes, expected {need}", data.len()),
        ));
    }
    let dim = IxDyn(&shape);
    Ok(match descr {
        "<f4" => NpyArray::F32(decode(data, dim, f32::from_le_bytes)),
        "<f8" => NpyArray::F64(decode(data, dim, f64::from_le_bytes)),
        "<i4" => NpyArray::I32(decode(data, dim, i32::from_le_bytes)),
        _ => NpyArray::I64(decode(data, dim, i64::from_le_bytes)),
    })
}

fn decode<T, const N: usize>(data: &[u8], dim: IxDyn, f: fn([u8; N]) -> T) -> ArrayD<T> {
    let v = data
        .chunks_exact(N)
        .map(|c| f(c.try_into().expect("chunk of N bytes")))
        .collect();
    ArrayD::from_shape_vec(dim, v).expect("length checked against the shape")
}

/// Reads a `.npy` file.
pub fn read_npy(path: &Path) -> Result<NpyArray> {
    let bytes = std::fs::read(path).map_err(|source| SkeletonError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_npy(&bytes, &path.display().to_string())
}

/// Serializes an array as `.npy` (version 1.0, C order; header padded to 64 bytes).
pub fn to_npy_bytes<T: NpyElement>(a: &ArrayViewD<'_, T>) -> Vec<u8> {
    let shape = match a.shape() {
        [d] => format!("({d},)"),
        s => format!(
            "({})",
            s.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {shape}, }}",
        T::DESCR
    );
    let unpadded = MAGIC.len() + 4 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + a.len() * 8);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for &v in a.iter() {
        v.put_le(&mut out);
    }
    out
}

/// Writes an array as a `.npy` file.
pub fn write_npy<T: NpyElement>(path: &Path, a: &ArrayViewD<'_, T>) -> Result<()> {
    std::fs::write(path, to_npy_bytes(a)).map_err(|source| SkeletonError::Io {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array;

    #[test]
    fn round_trip_f32_and_i64() {
        let a = Array::from_shape_fn((2, 3, 4, 5, 1), |(n, c, t, v, _)| {
            (n * 1000 + c * 100 + t * 10 + v) as f32 * 0.5
        })
        .into_dyn();
        let bytes = to_npy_bytes(&a.view());
        assert_eq!((bytes.len() - a.len() * 4) % 64, 0);
        assert_eq!(parse_npy(&bytes, "a.npy").unwrap(), NpyArray::F32(a));
        let l = Array::from_vec(vec![3i64, -1, 7]).into_dyn();
        let bytes = to_npy_bytes(&l.view());
        assert_eq!(parse_npy(&bytes, "l.npy").unwrap(), NpyArray::I64(l));
    }

    proptest::proptest! {
        #[test]
        fn round_trip_random_f64(
            shape in proptest::collection::vec(1usize..5, 0..6),
            seed in proptest::prelude::any::<u64>(),
        ) {
            let len: usize = shape.iter().product();
            let vals: Vec<f64> = (0..len)
                .map(|i| f64::from_bits(seed.wrapping_mul(i as u64 + 1) >> 2))
                .collect();
            let a = ArrayD::from_shape_vec(IxDyn(&shape), vals).unwrap();
            let bytes = to_npy_bytes(&a.view());
            proptest::prop_assert_eq!(parse_npy(&bytes, "p.npy").unwrap(), NpyArray::F64(a));
        }
    }

    #[test]
    fn known_numpy_header_parses() {
        // Header as numpy 1.x writes it for np.zeros((2, 1), '<f8').
        let header = "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 1), }";
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&[1, 0]);
        let mut h = header.to_string();
        while (10 + h.len() + 1) % 64 != 0 {
            h.push(' ');
        }
        h.push('\n');
        bytes.extend_from_slice(&(h.len() as u16).to_le_bytes());
        bytes.extend_from_slice(h.as_bytes());
        bytes.extend_from_slice(&1.5f64.to_le_bytes());
        bytes.extend_from_slice(&(-2.0f64).to_le_bytes());
        let a = parse_npy(&bytes, "z.npy").unwrap();
        assert_eq!(a.shape(), &[2, 1]);
        assert_eq!(a.into_f32().into_raw_vec_and_offset().0, vec![1.5f32, -2.0]);
    }

    #[test]
    fn errors_give_offsets() {
        let a = Array::from_vec(vec![1.0f32, 2.0]).into_dyn();
        let mut bytes = to_npy_bytes(&a.view());
        let data_start = bytes.len() - 8;
        assert_eq!(data_start % 64, 0);
        bytes.pop();
        match parse_npy(&bytes, "t.npy") {
            Err(SkeletonError::Npy { offset, .. }) => assert_eq!(offset, data_start),
            other => panic!("unexpected {other:?}"),
        }
        let mut bytes = to_npy_bytes(&a.view());
        let pos = bytes.windows(3).position(|w| w == b"<f4").unwrap();
        bytes[pos] = b'>';
        assert!(matches!(
            parse_npy(&bytes, "t.npy"),
            Err(SkeletonError::Npy { offset: 10, .. })
        ));
        assert!(matches!(
            parse_npy(b"hello world", "t.npy"),
            Err(SkeletonError::Npy { offset: 0, .. })
        ));
    }
}
