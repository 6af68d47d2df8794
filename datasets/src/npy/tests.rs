//! Tests of the `.npy` reader and writer: round trips of every element type, NumPy's own bytes,
//! Fortran order, big-endian data, gzip, format 2.0, and errors that name the file and offset.

use std::io::Write;

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

// The tests of the reader the skeleton loaders had before they used this one.

#[test]
fn round_trip_f32_and_i64() {
    let a = Array::from_shape_fn((2, 3, 4, 5, 1), |(n, c, t, v, _)| {
        (n * 1000 + c * 100 + t * 10 + v) as f32 * 0.5
    })
    .into_dyn();
    let bytes = to_npy_bytes(&a.view());
    assert_eq!((bytes.len() - a.len() * 4) % 64, 0);
    assert_eq!(
        read_npy_from(&mut &bytes[..], "a.npy").unwrap(),
        NpyArray::F32(a)
    );
    let l = Array::from_vec(vec![3i64, -1, 7]).into_dyn();
    let bytes = to_npy_bytes(&l.view());
    assert_eq!(
        read_npy_from(&mut &bytes[..], "l.npy").unwrap(),
        NpyArray::I64(l)
    );
}

proptest! {
    #[test]
    fn round_trip_random_f64(
        shape in proptest::collection::vec(1usize..5, 0..6),
        seed in any::<u64>(),
    ) {
        let len: usize = shape.iter().product();
        let vals: Vec<f64> = (0..len)
            .map(|i| f64::from_bits(seed.wrapping_mul(i as u64 + 1) >> 2))
            .collect();
        let a = ArrayD::from_shape_vec(IxDyn(&shape), vals).unwrap();
        let bytes = to_npy_bytes(&a.view());
        prop_assert_eq!(read_npy_from(&mut &bytes[..], "p.npy").unwrap(), NpyArray::F64(a));
    }
}

#[test]
fn known_numpy_header_parses() {
    // Header as numpy 1.x writes it for np.zeros((2, 1), '<f8').
    let header = "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 1), }";
    let mut bytes = MAGIC.to_vec();
    bytes.extend_from_slice(&[1, 0]);
    let mut h = header.to_string();
    while !(10 + h.len() + 1).is_multiple_of(64) {
        h.push(' ');
    }
    h.push('\n');
    bytes.extend_from_slice(&(h.len() as u16).to_le_bytes());
    bytes.extend_from_slice(h.as_bytes());
    bytes.extend_from_slice(&1.5f64.to_le_bytes());
    bytes.extend_from_slice(&(-2.0f64).to_le_bytes());
    let a = read_npy_from(&mut &bytes[..], "z.npy").unwrap();
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
    match read_npy_from(&mut &bytes[..], "t.npy") {
        Err(DatasetError::Truncated { offset, .. }) => assert_eq!(offset, data_start as u64),
        other => panic!("unexpected {other:?}"),
    }
    // An element type the reader does not know is refused at the header text (offset 10).
    // (The skeleton loaders' former reader also refused big-endian data there; this reader
    // accepts it, see `fortran_order_and_big_endian`.)
    let mut bytes = to_npy_bytes(&a.view());
    let pos = bytes.windows(3).position(|w| w == b"<f4").unwrap();
    bytes[pos + 1] = b'c';
    assert!(matches!(
        read_npy_from(&mut &bytes[..], "t.npy"),
        Err(DatasetError::UnsupportedType { offset: 10, .. })
    ));
    assert!(matches!(
        read_npy_from(&mut &b"hello world"[..], "t.npy"),
        Err(DatasetError::BadMagic { offset: 0, .. })
    ));
}

#[test]
fn integer_and_float_conversions() {
    let i = NpyArray::I32(array![3i32, -1].into_dyn());
    assert_eq!(i.clone().into_i64().unwrap(), array![3i64, -1].into_dyn());
    assert_eq!(i.into_f32(), array![3f32, -1.0].into_dyn());
    let u = NpyArray::U8(array![200u8].into_dyn());
    assert_eq!(u.into_i64().unwrap(), array![200i64].into_dyn());
    assert!(NpyArray::F64(array![1.0].into_dyn()).into_i64().is_none());
    assert_eq!(
        NpyArray::F64(array![0.5f64].into_dyn()).into_f32(),
        array![0.5f32].into_dyn()
    );
}
