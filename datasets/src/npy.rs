//! Reader and writer for NumPy `.npy` files (format versions 1.0, 2.0 and 3.0, as specified in
//! `numpy/lib/format.py`, "NEP 1"): arrays of any shape of `f64`, `f32`, `i64`, `i32` or `u8`.
//!
//! Used for skeleton action arrays of shape (N, C, T, V, M) (the layout of the ST-GCN / NTU RGB+D
//! preprocessing scripts) and for dataset exchange with NumPy users. Reading accepts little- or
//! big-endian data and C or Fortran order, and returns C-order arrays; files may be gzip'd.
//! Writing produces little-endian, C-order files with the header padded to 64 bytes, like NumPy.
//! Errors name the file and byte offset.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::Path;

use ndarray::{ArrayBase, ArrayD, Data, Dimension, IxDyn, ShapeBuilder};

use crate::error::{hex, DatasetError, NpyHeaderProblem, Result};
use crate::io::{display, open_maybe_gzip};

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

/// A parsed `.npy` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpyHeader {
    /// Element type.
    pub dtype: Dtype,
    /// Whether elements are stored big-endian.
    pub big_endian: bool,
    /// Whether the data is in Fortran (column-major) order.
    pub fortran_order: bool,
    /// Array shape (empty for a 0-d array).
    pub shape: Vec<usize>,
    /// Byte offset of the first data byte.
    pub data_offset: u64,
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
fn read_full<R: Read>(r: &mut R, buf: &mut [u8], name: &str) -> Result<usize> {
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

fn read_exact_at<R: Read>(
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

/// Reads and validates the magic, version and header dict.
///
/// # Errors
/// As [`read_npy`].
pub fn read_header<R: Read>(r: &mut R, name: &str) -> Result<NpyHeader> {
    let mut pre = [0u8; 8];
    let got = read_full(r, &mut pre, name)?;
    if got < 6 || &pre[..6] != MAGIC {
        return Err(DatasetError::BadMagic {
            file: name.to_owned(),
            offset: 0,
            expected: hex(MAGIC),
            found: hex(&pre[..got.min(6)]),
        });
    }
    if got < 8 {
        return Err(DatasetError::Truncated {
            file: name.to_owned(),
            offset: got as u64,
            what: "format version",
            expected: (8 - got) as u64,
            found: 0,
        });
    }
    let (major, minor) = (pre[6], pre[7]);
    let len_bytes = match (major, minor) {
        (1, 0) => 2,
        (2, 0) | (3, 0) => 4,
        _ => {
            return Err(DatasetError::NpyHeader {
                file: name.to_owned(),
                offset: 6,
                problem: NpyHeaderProblem::UnsupportedVersion { major, minor },
                header: String::new(),
            })
        }
    };
    let mut len_buf = [0u8; 4];
    read_exact_at(r, &mut len_buf[..len_bytes], name, 8, "header length")?;
    let header_len = u32::from_le_bytes(len_buf) as usize;
    let text_offset = 8 + len_bytes as u64;
    let mut text = vec![0u8; header_len];
    read_exact_at(r, &mut text, name, text_offset, "header")?;
    let text: String = if major == 3 {
        String::from_utf8(text).map_err(|_| DatasetError::NpyHeader {
            file: name.to_owned(),
            offset: text_offset,
            problem: NpyHeaderProblem::NotUtf8,
            header: String::new(),
        })?
    } else {
        text.iter().map(|&b| b as char).collect() // latin-1
    };
    let bad = |problem| DatasetError::NpyHeader {
        file: name.to_owned(),
        offset: text_offset,
        problem,
        header: text.clone(),
    };
    let dict = parse_dict(&text).map_err(&bad)?;
    let mut descr = None;
    let mut fortran = None;
    let mut shape = None;
    for (key, value) in dict {
        match (key.as_str(), value) {
            ("descr", v) => descr = Some(v),
            ("fortran_order", Value::Bool(b)) => fortran = Some(b),
            ("shape", Value::Tuple(s)) => shape = Some(s),
            ("fortran_order", _) => {
                return Err(bad(NpyHeaderProblem::Syntax {
                    position: 0,
                    expected: "True or False for 'fortran_order'",
                }))
            }
            ("shape", _) => {
                return Err(bad(NpyHeaderProblem::Syntax {
                    position: 0,
                    expected: "a tuple of integers for 'shape'",
                }))
            }
            (other, _) => return Err(bad(NpyHeaderProblem::UnknownKey(other.to_owned()))),
        }
    }
    let descr = descr.ok_or_else(|| bad(NpyHeaderProblem::MissingKey("descr")))?;
    let fortran_order =
        fortran.ok_or_else(|| bad(NpyHeaderProblem::MissingKey("fortran_order")))?;
    let shape = shape.ok_or_else(|| bad(NpyHeaderProblem::MissingKey("shape")))?;
    let descr_text = match descr {
        Value::Str(s) => s,
        Value::Other(raw) => raw,
        Value::Bool(b) => b.to_string(),
        Value::Tuple(t) => format!("{t:?}"),
    };
    let (dtype, big_endian) =
        Dtype::parse(&descr_text).ok_or_else(|| DatasetError::UnsupportedType {
            file: name.to_owned(),
            offset: text_offset,
            found: descr_text.clone(),
            supported: SUPPORTED,
        })?;
    let count = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .and_then(|c| c.checked_mul(dtype.size()));
    if count.is_none() {
        return Err(bad(NpyHeaderProblem::ShapeOverflow));
    }
    Ok(NpyHeader {
        dtype,
        big_endian,
        fortran_order,
        shape,
        data_offset: text_offset + header_len as u64,
    })
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

#[derive(Debug)]
enum Value {
    Str(String),
    Bool(bool),
    Tuple(Vec<usize>),
    /// A value this reader does not interpret (e.g. a structured dtype list), as written.
    Other(String),
}

/// Parses the header's Python dict literal (string keys; string, bool, int-tuple values).
fn parse_dict(text: &str) -> std::result::Result<Vec<(String, Value)>, NpyHeaderProblem> {
    let chars: Vec<char> = text.chars().collect();
    let mut p = Cursor { c: &chars, i: 0 };
    let mut out = Vec::new();
    p.expect('{', "'{'")?;
    loop {
        p.ws();
        if p.eat('}') {
            break;
        }
        let key = p.string()?;
        p.ws();
        p.expect(':', "':'")?;
        p.ws();
        let value = p.value()?;
        out.push((key, value));
        p.ws();
        if p.eat(',') {
            continue;
        }
        p.expect('}', "',' or '}'")?;
        break;
    }
    p.ws();
    if p.i != chars.len() {
        return Err(p.err("only padding after the dict"));
    }
    Ok(out)
}

struct Cursor<'a> {
    c: &'a [char],
    i: usize,
}

impl Cursor<'_> {
    fn err(&self, expected: &'static str) -> NpyHeaderProblem {
        NpyHeaderProblem::Syntax {
            position: self.i,
            expected,
        }
    }
    fn ws(&mut self) {
        while self.i < self.c.len() && self.c[self.i].is_whitespace() {
            self.i += 1;
        }
    }
    fn eat(&mut self, ch: char) -> bool {
        if self.c.get(self.i) == Some(&ch) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn expect(
        &mut self,
        ch: char,
        what: &'static str,
    ) -> std::result::Result<(), NpyHeaderProblem> {
        self.ws();
        if self.eat(ch) {
            Ok(())
        } else {
            Err(self.err(what))
        }
    }
    fn string(&mut self) -> std::result::Result<String, NpyHeaderProblem> {
        let q = match self.c.get(self.i) {
            Some(&q @ ('\'' | '"')) => q,
            _ => return Err(self.err("a quoted string")),
        };
        self.i += 1;
        let start = self.i;
        while self.i < self.c.len() && self.c[self.i] != q {
            self.i += 1;
        }
        if self.i == self.c.len() {
            return Err(self.err("a closing quote"));
        }
        let s: String = self.c[start..self.i].iter().collect();
        self.i += 1;
        Ok(s)
    }
    fn word(&mut self, w: &str) -> bool {
        let n = w.chars().count();
        if self.i + n <= self.c.len() && self.c[self.i..self.i + n].iter().copied().eq(w.chars()) {
            self.i += n;
            true
        } else {
            false
        }
    }
    fn value(&mut self) -> std::result::Result<Value, NpyHeaderProblem> {
        match self.c.get(self.i) {
            Some('\'' | '"') => Ok(Value::Str(self.string()?)),
            Some('(') => {
                self.i += 1;
                let mut dims = Vec::new();
                loop {
                    self.ws();
                    if self.eat(')') {
                        break;
                    }
                    let start = self.i;
                    while self.i < self.c.len() && self.c[self.i].is_ascii_digit() {
                        self.i += 1;
                    }
                    if start == self.i {
                        return Err(self.err("a non-negative integer in the shape"));
                    }
                    let digits: String = self.c[start..self.i].iter().collect();
                    let d = digits
                        .parse::<usize>()
                        .map_err(|_| NpyHeaderProblem::ShapeOverflow)?;
                    self.eat('L'); // Python 2 long suffix
                    dims.push(d);
                    self.ws();
                    if self.eat(',') {
                        continue;
                    }
                    self.expect(')', "',' or ')' in the shape")?;
                    break;
                }
                Ok(Value::Tuple(dims))
            }
            Some('[') => {
                let start = self.i;
                let mut depth = 0i32;
                while self.i < self.c.len() {
                    match self.c[self.i] {
                        '[' => depth += 1,
                        ']' => depth -= 1,
                        _ => {}
                    }
                    self.i += 1;
                    if depth == 0 {
                        return Ok(Value::Other(self.c[start..self.i].iter().collect()));
                    }
                }
                Err(self.err("a closing ']'"))
            }
            _ if self.word("True") => Ok(Value::Bool(true)),
            _ if self.word("False") => Ok(Value::Bool(false)),
            _ => Err(self.err("a string, True, False or a tuple")),
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array, Array5};
    use proptest::prelude::*;

    fn round_trip<T: NpyElement + std::fmt::Debug + PartialEq>(a: &ArrayD<T>) -> ArrayD<T> {
        let bytes = to_npy_bytes(a);
        assert_eq!(bytes.len() % 64, (a.len() * T::DTYPE.size()) % 64);
        let arr = read_npy_from(&mut &bytes[..], "mem").unwrap();
        assert_eq!(arr.dtype(), T::DTYPE);
        assert_eq!(arr.shape(), a.shape());
        let header = read_header(&mut &bytes[..], "mem").unwrap();
        assert_eq!(header.data_offset % 64, 0);
        let mut r = &bytes[header.data_offset as usize..];
        read_body(&mut r, &header, "mem").unwrap()
    }

    #[test]
    fn known_numpy_file_bytes() {
        // np.save of np.arange(6, dtype='<i8').reshape(2, 3) (numpy >= 1.x, 128-byte header).
        let mut bytes = b"\x93NUMPY\x01\x00\x76\x00".to_vec();
        let dict = b"{'descr': '<i8', 'fortran_order': False, 'shape': (2, 3), }";
        bytes.extend_from_slice(dict);
        bytes.resize(127, b' ');
        bytes.push(b'\n');
        for v in 0i64..6 {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        let arr = read_npy_from(&mut &bytes[..], "arange.npy").unwrap();
        let want = Array::from_shape_vec(IxDyn(&[2, 3]), (0i64..6).collect()).unwrap();
        assert_eq!(arr, NpyArray::I64(want.clone()));
        // Our writer produces the same bytes.
        assert_eq!(to_npy_bytes(&want), bytes);
    }

    #[test]
    fn fortran_order_and_big_endian() {
        // Fortran-order 2x3 f4: memory holds columns [0,3],[1,4],[2,5].
        let mut bytes = header_text("{'descr': '>f4', 'fortran_order': True, 'shape': (2, 3), }");
        for v in [0f32, 3., 1., 4., 2., 5.] {
            bytes.extend_from_slice(&v.to_be_bytes());
        }
        let arr = read_npy_from(&mut &bytes[..], "f.npy").unwrap();
        let want = array![[0f32, 1., 2.], [3., 4., 5.]].into_dyn();
        assert_eq!(arr, NpyArray::F32(want));
        if let NpyArray::F32(a) = arr {
            assert!(a.is_standard_layout());
        }
    }

    fn header_text(dict: &str) -> Vec<u8> {
        let mut b = MAGIC.to_vec();
        b.extend_from_slice(&[1, 0]);
        let len = dict.len() + 1;
        b.extend_from_slice(&(len as u16).to_le_bytes());
        b.extend_from_slice(dict.as_bytes());
        b.push(b'\n');
        b
    }

    #[test]
    fn scalars_and_empty_arrays() {
        let s = ArrayD::from_elem(IxDyn(&[]), 2.5f64);
        assert_eq!(round_trip(&s), s);
        let e = ArrayD::<u8>::zeros(IxDyn(&[0, 4]));
        assert_eq!(round_trip(&e), e);
        let one = ArrayD::from_shape_vec(IxDyn(&[3]), vec![1i32, -2, 3]).unwrap();
        assert_eq!(round_trip(&one), one);
        let h = String::from_utf8_lossy(&to_npy_bytes(&one)[10..64]).into_owned();
        assert!(h.contains("'shape': (3,)"), "{h}");
    }

    #[test]
    fn skeleton_shaped_file_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("skel.npy");
        // (N, C, T, V, M) = (2, 3, 4, 25, 2), non-standard layout to check logical-order writes.
        let a: Array5<f32> = Array::from_shape_fn((2, 3, 4, 25, 2), |(n, c, t, v, m)| {
            (n * 10000 + c * 1000 + t * 100 + v * 2 + m) as f32 * 0.5
        });
        let permuted = a.view().permuted_axes([0, 2, 1, 3, 4]);
        write_npy(&p, &a).unwrap();
        let back = read_npy_as::<f32>(&p).unwrap();
        assert_eq!(back, a.clone().into_dyn());
        write_npy(&p, &permuted).unwrap();
        let back = read_npy_as::<f32>(&p).unwrap();
        assert_eq!(back.shape(), &[2, 4, 3, 25, 2]);
        assert_eq!(back, permuted.to_owned().into_dyn());
        // Typed read of the wrong type, and conversion to f64.
        let err = read_npy_as::<f64>(&p).unwrap_err();
        assert!(
            matches!(
                err,
                DatasetError::DtypeMismatch {
                    expected: "<f8",
                    ..
                }
            ),
            "{err}"
        );
        let f = read_npy_f64(&p).unwrap();
        assert_eq!(f[[1, 3, 2, 24, 1]], f64::from(permuted[[1, 3, 2, 24, 1]]));
    }

    #[test]
    fn gzip_npy_reads() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.npy.gz");
        let a = array![[1u8, 2], [3, 4]].into_dyn();
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&to_npy_bytes(&a)).unwrap();
        std::fs::write(&p, enc.finish().unwrap()).unwrap();
        assert_eq!(read_npy(&p).unwrap(), NpyArray::U8(a));
    }

    #[test]
    fn long_header_switches_to_version_2() {
        // 23,000 dimensions of size 1 ("1, " each) make a header longer than 65,535 bytes.
        let a = ArrayD::<u8>::zeros(IxDyn(&vec![1; 23_000]));
        let bytes = to_npy_bytes(&a);
        assert_eq!(bytes[6], 2);
        assert_eq!(bytes.len() % 64, 1);
        let header = read_header(&mut &bytes[..], "long.npy").unwrap();
        assert_eq!(header.shape.len(), 23_000);
        assert_eq!(header.data_offset % 64, 0);
        assert_eq!(
            read_npy_from(&mut &bytes[..], "long.npy").unwrap(),
            NpyArray::U8(a)
        );
    }

    #[test]
    fn version_2_header() {
        let dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }\n";
        let mut b = MAGIC.to_vec();
        b.extend_from_slice(&[2, 0]);
        b.extend_from_slice(&(dict.len() as u32).to_le_bytes());
        b.extend_from_slice(dict.as_bytes());
        b.extend_from_slice(&1.5f64.to_le_bytes());
        b.extend_from_slice(&(-2.0f64).to_le_bytes());
        let a = read_npy_from(&mut &b[..], "v2.npy").unwrap();
        assert_eq!(a, NpyArray::F64(array![1.5, -2.0].into_dyn()));
    }

    #[test]
    fn errors_name_file_and_offset() {
        let good = to_npy_bytes(&array![1.0f64, 2.0, 3.0]);
        // Bad magic.
        let mut b = good.clone();
        b[1] = b'X';
        let e = read_npy_from(&mut &b[..], "m.npy").unwrap_err();
        assert!(matches!(e, DatasetError::BadMagic { offset: 0, .. }), "{e}");
        assert!(e.to_string().starts_with("m.npy@0:"), "{e}");
        // Unsupported version.
        let mut b = good.clone();
        b[6] = 9;
        let e = read_npy_from(&mut &b[..], "v.npy").unwrap_err();
        assert!(e.to_string().contains("9.0"), "{e}");
        // Truncated data: offset of the data (128), expected 24 bytes, found 20.
        let b = &good[..good.len() - 4];
        let e = read_npy_from(&mut &b[..], "t.npy").unwrap_err();
        assert!(
            matches!(
                e,
                DatasetError::Truncated {
                    offset: 128,
                    expected: 24,
                    found: 20,
                    ..
                }
            ),
            "{e}"
        );
        // Truncated header.
        let e = read_npy_from(&mut &good[..30], "h.npy").unwrap_err();
        assert!(
            matches!(
                e,
                DatasetError::Truncated {
                    offset: 10,
                    what: "header",
                    ..
                }
            ),
            "{e}"
        );
        // Trailing bytes.
        let mut b = good.clone();
        b.push(0);
        let e = read_npy_from(&mut &b[..], "x.npy").unwrap_err();
        assert!(
            matches!(e, DatasetError::TrailingBytes { offset: 152, .. }),
            "{e}"
        );
        // Unsupported dtype, structured dtype, syntax and missing keys.
        for (dict, check) in [
            (
                "{'descr': '<c16', 'fortran_order': False, 'shape': (1,), }",
                "c16",
            ),
            (
                "{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': (1,), }",
                "[('a'",
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (1,) ",
                "',' or '}'",
            ),
            ("{'descr': '<f8', 'shape': (1,), }", "fortran_order"),
            (
                "{'descr': '<f8', 'fortran_order': 0, 'shape': (1,), }",
                "True, False",
            ),
            (
                "{'descr': '<f8', 'fortran_order': 'no', 'shape': (1,), }",
                "True or False",
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), 'x': 'y'}",
                "'x'",
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (-1,), }",
                "non-negative",
            ),
        ] {
            let mut b = header_text(dict);
            b.extend_from_slice(&[0; 8]);
            let e = read_npy_from(&mut &b[..], "d.npy").unwrap_err();
            let msg = e.to_string();
            assert!(msg.starts_with("d.npy@10:"), "{msg}");
            assert!(msg.contains(check), "{msg} lacks {check}");
        }
        // Shape overflow.
        let mut b = header_text(
            "{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }",
        );
        b.extend_from_slice(&[0; 8]);
        let e = read_npy_from(&mut &b[..], "o.npy").unwrap_err();
        assert!(e.to_string().contains("overflow"), "{e}");
    }

    #[test]
    fn lossy_i64_conversion_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("i.npy");
        write_npy(&p, &array![1i64, (1 << 53) + 1]).unwrap();
        let e = read_npy_f64(&p).unwrap_err();
        assert!(
            matches!(e, DatasetError::LossyConversion { index: 1, .. }),
            "{e}"
        );
        write_npy(&p, &array![1i64, -(1 << 53)]).unwrap();
        assert_eq!(
            read_npy_f64(&p).unwrap(),
            array![1.0, -(2f64.powi(53))].into_dyn()
        );
    }

    fn shapes() -> impl Strategy<Value = Vec<usize>> {
        proptest::collection::vec(0usize..5, 0..6)
    }

    proptest! {
        #[test]
        fn round_trip_f64(shape in shapes(), seed in any::<u64>()) {
            let n: usize = shape.iter().product();
            let v: Vec<f64> = (0..n).map(|i| f64::from_bits(seed.wrapping_mul(i as u64 + 1) ^ 0x3ff0_0000_0000_0000)).collect();
            let a = ArrayD::from_shape_vec(IxDyn(&shape), v).unwrap();
            let b = round_trip(&a);
            // Compare bit patterns so NaNs round-trip too.
            prop_assert!(a.iter().zip(b.iter()).all(|(x, y)| x.to_bits() == y.to_bits()));
            prop_assert_eq!(a.shape(), b.shape());
        }

        #[test]
        fn round_trip_ints_and_bytes(shape in shapes(), seed in any::<i64>()) {
            let n: usize = shape.iter().product();
            let a = ArrayD::from_shape_vec(IxDyn(&shape), (0..n).map(|i| seed.wrapping_mul(i as i64 + 7)).collect()).unwrap();
            prop_assert_eq!(round_trip(&a), a.clone());
            let b = a.mapv(|v| v as i32);
            prop_assert_eq!(round_trip(&b), b.clone());
            let c = a.mapv(|v| v as u8);
            prop_assert_eq!(round_trip(&c), c.clone());
            let d = a.mapv(|v| v as f32);
            let back = round_trip(&d);
            prop_assert!(d.iter().zip(back.iter()).all(|(x, y)| x.to_bits() == y.to_bits()));
        }
    }
}
