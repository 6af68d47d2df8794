//! The `.npy` header: magic, format version, header length and the Python dict literal with
//! `descr`, `fortran_order` and `shape`, parsed and validated into an [`NpyHeader`].

use std::io::Read;

use super::{read_exact_at, read_full, Dtype, MAGIC, SUPPORTED};
use crate::error::{hex, DatasetError, NpyHeaderProblem, Result};

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

/// Reads and validates the magic, version and header dict.
///
/// # Errors
/// As [`read_npy`](super::read_npy).
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
