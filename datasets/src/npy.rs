//! Reader and writer for NumPy `.npy` files (format versions 1.0, 2.0 and 3.0, as specified in
//! `numpy/lib/format.py`, "NEP 1"): arrays of any shape of `f64`, `f32`, `i64`, `i32` or `u8`.
//!
//! Used for skeleton action arrays of shape (N, C, T, V, M) (the layout of the ST-GCN / NTU RGB+D
//! preprocessing scripts) and for dataset exchange with NumPy users. Reading accepts little- or
//! big-endian data and C or Fortran order, and returns C-order arrays; files may be gzip'd.
//! Writing produces little-endian, C-order files with the header padded to 64 bytes, like NumPy.
//! Errors name the file and byte offset.
//!
//! This is the crate's one `.npy` reader: the skeleton loaders ([`crate::skeleton::ntu`]) and the
//! parties' input files use it too. The header parser is in `header`, the writer in `write`.

use std::io::Read;
use std::path::Path;

use ndarray::{ArrayD, IxDyn, ShapeBuilder};

use crate::error::{DatasetError, Result};
use crate::io::{display, open_maybe_gzip};

mod header;
mod write;

#[cfg(test)]
mod tests;

pub use header::{read_header, NpyHeader};
pub use write::{to_npy_bytes, write_npy};

/// The magic string every `.npy` file starts with.
const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// Supported element types, named by their NumPy `descr`.
const SUPPORTED: &str = "f8, f4, i8, i4, u1 (little- or big-endian)";

mod sealed {
    pub trait Sealed {}
    impl Sealed for f64 {}
    impl Sealed for f32 {}
    impl Sealed for i64 {}
    impl Sealed for i32 {}
    impl Sealed for u8 {}
}

/// An element type that can be stored in a `.npy` file.
pub trait NpyElement: Copy + Default + sealed::Sealed + 'static {
    /// The element type code.
    const DTYPE: Dtype;
    /// Decodes one element from `Self::DTYPE.size()` bytes in the given byte order.
    fn decode(bytes: &[u8], big_endian: bool) -> Self;
    /// Appends the little-endian encoding.
    fn encode_le(self, out: &mut Vec<u8>);
}

macro_rules! element {
    ($t:ty, $d:expr, $n:expr) => {
        impl NpyElement for $t {
            const DTYPE: Dtype = $d;
            fn decode(bytes: &[u8], big_endian: bool) -> Self {
                let mut b = [0u8; $n];
                b.copy_from_slice(bytes);
                if big_endian {
                    <$t>::from_be_bytes(b)
                } else {
                    <$t>::from_le_bytes(b)
                }
            }
            fn encode_le(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
        }
    };
}
element!(f64, Dtype::F64, 8);
element!(f32, Dtype::F32, 4);
element!(i64, Dtype::I64, 8);
element!(i32, Dtype::I32, 4);
element!(u8, Dtype::U8, 1);

/// Element types supported by this module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    /// `f8`, 64-bit float.
    F64,
    /// `f4`, 32-bit float.
    F32,
    /// `i8`, 64-bit signed integer.
    I64,
    /// `i4`, 32-bit signed integer.
    I32,
    /// `u1`, byte.
    U8,
}

impl Dtype {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Dtype::F64 | Dtype::I64 => 8,
            Dtype::F32 | Dtype::I32 => 4,
            Dtype::U8 => 1,
        }
    }

    /// The little-endian NumPy `descr` written to headers (`"<f8"`, `"|u1"`, ...).
    pub fn descr(self) -> &'static str {
        match self {
            Dtype::F64 => "<f8",
            Dtype::F32 => "<f4",
            Dtype::I64 => "<i8",
            Dtype::I32 => "<i4",
            Dtype::U8 => "|u1",
        }
    }

    /// Parses a `descr`; returns the type and whether the data is big-endian.
    fn parse(descr: &str) -> Option<(Dtype, bool)> {
        let (order, code) = descr.split_at(descr.len().min(1));
        let big = match order {
            "<" | "=" | "|" => false,
            ">" => true,
            _ => return None,
        };
        let dtype = match code {
            "f8" => Dtype::F64,
            "f4" => Dtype::F32,
            "i8" => Dtype::I64,
            "i4" => Dtype::I32,
            "u1" => Dtype::U8,
            _ => return None,
        };
        Some((dtype, big && dtype.size() > 1))
    }
}

/// An array read from a `.npy` file, in its stored element type.
#[derive(Debug, Clone, PartialEq)]
pub enum NpyArray {
    /// `f8` data.
    F64(ArrayD<f64>),
    /// `f4` data.
    F32(ArrayD<f32>),
    /// `i8` data.
    I64(ArrayD<i64>),
    /// `i4` data.
    I32(ArrayD<i32>),
    /// `u1` data.
    U8(ArrayD<u8>),
}

impl NpyArray {
    /// The element type.
    pub fn dtype(&self) -> Dtype {
        match self {
            NpyArray::F64(_) => Dtype::F64,
            NpyArray::F32(_) => Dtype::F32,
            NpyArray::I64(_) => Dtype::I64,
            NpyArray::I32(_) => Dtype::I32,
            NpyArray::U8(_) => Dtype::U8,
        }
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        match self {
            NpyArray::F64(a) => a.shape(),
            NpyArray::F32(a) => a.shape(),
            NpyArray::I64(a) => a.shape(),
            NpyArray::I32(a) => a.shape(),
            NpyArray::U8(a) => a.shape(),
        }
    }

    /// The values as `f32` (`f64` and integers are converted with `as`).
    pub fn into_f32(self) -> ArrayD<f32> {
        match self {
            NpyArray::F64(a) => a.mapv(|v| v as f32),
            NpyArray::F32(a) => a,
            NpyArray::I64(a) => a.mapv(|v| v as f32),
            NpyArray::I32(a) => a.mapv(|v| v as f32),
            NpyArray::U8(a) => a.mapv(f32::from),
        }
    }

    /// The values as `i64` if the array holds integers (`i8`, `i4` or `u1`).
    pub fn into_i64(self) -> Option<ArrayD<i64>> {
        match self {
            NpyArray::I64(a) => Some(a),
            NpyArray::I32(a) => Some(a.mapv(i64::from)),
            NpyArray::U8(a) => Some(a.mapv(i64::from)),
            NpyArray::F64(_) | NpyArray::F32(_) => None,
        }
    }
}

/// Reads a `.npy` file (plain or gzip'd) in whatever supported type it stores.
///
/// # Errors
/// I/O errors; [`DatasetError::BadMagic`], [`DatasetError::NpyHeader`],
/// [`DatasetError::UnsupportedType`], [`DatasetError::Truncated`] or
/// [`DatasetError::TrailingBytes`], each naming the file and byte offset.
pub fn read_npy(path: &Path) -> Result<NpyArray> {
    let mut r = open_maybe_gzip(path)?;
    read_npy_from(&mut r, &display(path))
}

/// Reads a `.npy` file whose elements must be of type `T`.
///
/// # Errors
/// As [`read_npy`], plus [`DatasetError::DtypeMismatch`] if the file stores another type.
pub fn read_npy_as<T: NpyElement>(path: &Path) -> Result<ArrayD<T>> {
    let name = display(path);
    let mut r = open_maybe_gzip(path)?;
    let header = read_header(&mut r, &name)?;
    if header.dtype != T::DTYPE {
        return Err(DatasetError::DtypeMismatch {
            file: name,
            expected: T::DTYPE.descr(),
            found: header.dtype.descr().to_owned(),
        });
    }
    read_body(&mut r, &header, &name)
}

/// Reads a `.npy` file of any supported type, converted exactly to `f64`.
///
/// # Errors
/// As [`read_npy`], plus [`DatasetError::LossyConversion`] for an `i8` value beyond ±2^53.
pub fn read_npy_f64(path: &Path) -> Result<ArrayD<f64>> {
    let name = display(path);
    let arr = read_npy(path)?;
    Ok(match arr {
        NpyArray::F64(a) => a,
        NpyArray::F32(a) => a.mapv(f64::from),
        NpyArray::I32(a) => a.mapv(f64::from),
        NpyArray::U8(a) => a.mapv(f64::from),
        NpyArray::I64(a) => {
            const LIMIT: i64 = 1 << 53;
            if let Some((index, &value)) = a
                .iter()
                .enumerate()
                .find(|(_, v)| !(-LIMIT..=LIMIT).contains(*v))
            {
                return Err(DatasetError::LossyConversion {
                    file: name,
                    index,
                    value,
                });
            }
            a.mapv(|v| v as f64)
        }
    })
}

/// Reads a `.npy` stream; `name` stands for the file in error messages.
///
/// # Errors
/// As [`read_npy`].
pub fn read_npy_from<R: Read>(r: &mut R, name: &str) -> Result<NpyArray> {
    let header = read_header(r, name)?;
    Ok(match header.dtype {
        Dtype::F64 => NpyArray::F64(read_body(r, &header, name)?),
        Dtype::F32 => NpyArray::F32(read_body(r, &header, name)?),
        Dtype::I64 => NpyArray::I64(read_body(r, &header, name)?),
        Dtype::I32 => NpyArray::I32(read_body(r, &header, name)?),
        Dtype::U8 => NpyArray::U8(read_body(r, &header, name)?),
    })
}

/// Reads until `buf` is full or the stream ends; returns the number of bytes read.
pub(crate) fn read_full<R: Read>(r: &mut R, buf: &mut [u8], name: &str) -> Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(DatasetError::io(name, e)),
        }
    }
    Ok(got)
}

pub(crate) fn read_exact_at<R: Read>(
    r: &mut R,
    buf: &mut [u8],
    name: &str,
    offset: u64,
    what: &'static str,
) -> Result<()> {
    let got = read_full(r, buf, name)?;
    if got < buf.len() {
        return Err(DatasetError::Truncated {
            file: name.to_owned(),
            offset,
            what,
            expected: buf.len() as u64,
            found: got as u64,
        });
    }
    Ok(())
}

/// Reads the data that follows `header` and checks that nothing follows it.
fn read_body<T: NpyElement, R: Read>(
    r: &mut R,
    header: &NpyHeader,
    name: &str,
) -> Result<ArrayD<T>> {
    let size = T::DTYPE.size();
    let count: usize = header.shape.iter().product();
    let total = count * size; // checked in read_header
                              // Do not trust the header for the allocation: grow as data actually arrives.
    let mut out: Vec<T> = Vec::with_capacity(count.min(1 << 24));
    let mut buf = vec![0u8; (1 << 16) / size * size];
    let mut done = 0usize;
    while done < total {
        let want = buf.len().min(total - done);
        let got = read_full(r, &mut buf[..want], name)?;
        let whole = got / size * size;
        out.extend(
            buf[..whole]
                .chunks_exact(size)
                .map(|c| T::decode(c, header.big_endian)),
        );
        done += got;
        if got < want {
            return Err(DatasetError::Truncated {
                file: name.to_owned(),
                offset: header.data_offset,
                what: "array data",
                expected: total as u64,
                found: done as u64,
            });
        }
    }
    let mut probe = [0u8; 1];
    if read_full(r, &mut probe, name)? > 0 {
        return Err(DatasetError::TrailingBytes {
            file: name.to_owned(),
            offset: header.data_offset + total as u64,
        });
    }
    let shape = IxDyn(&header.shape);
    let arr = if header.fortran_order {
        let f = ArrayD::from_shape_vec(shape.f(), out).expect("length = product of shape");
        f.as_standard_layout().into_owned()
    } else {
        ArrayD::from_shape_vec(shape, out).expect("length = product of shape")
    };
    Ok(arr)
}
