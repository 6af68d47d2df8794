//! MNIST handwritten digits (LeCun, Cortes, Burges) from IDX files, plain or gzip'd.
//!
//! The IDX format (as described on the MNIST page): a 4-byte big-endian magic `00 00 TT DD`
//! where `TT` is the element type (`08` = unsigned byte, the only one MNIST uses) and `DD` the
//! number of dimensions, then `DD` big-endian `u32` sizes, then the elements in C order.
//! Images have magic `0x00000803` (N × rows × cols), labels `0x00000801` (N).
//!
//! The full set (60,000 train + 10,000 test) is bundled under `datasets/data/mnist/` and is used
//! by the SecureML experiments (logistic regression, MLP 784-128-128-10), including the binary
//! tasks made with [`Mnist::binary`]. Offsets in errors are in the uncompressed stream.

use std::path::{Path, PathBuf};

use ndarray::{Array1, Array2, Axis};

use crate::dataset::{Dataset, Task};
use crate::error::{hex, DatasetError, Result};
use crate::io::{display, read_maybe_gzip};

/// IDX element type code of unsigned bytes.
const IDX_U8: u8 = 0x08;
/// Magic of an IDX file of 3-D unsigned-byte data (images).
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic of an IDX file of 1-D unsigned-byte data (labels).
pub const LABELS_MAGIC: u32 = 0x0000_0801;
/// Number of digit classes.
pub const N_CLASSES: usize = 10;

/// Which half of MNIST.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    /// The 60,000 training images.
    Train,
    /// The 10,000 test images.
    Test,
}

impl Split {
    /// File-name prefix of the split (`"train"` or `"t10k"`).
    pub fn prefix(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "t10k",
        }
    }

    /// Name of the split in dataset names (`"train"` or `"test"`).
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "test",
        }
    }
}

/// An IDX array of unsigned bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    /// Dimension sizes.
    pub dims: Vec<usize>,
    /// Elements in C order.
    pub data: Vec<u8>,
}

/// Parses an unsigned-byte IDX file held in memory (reusing its buffer for the data); `name` stands for the file in errors.
/// If `expected_ndim` is given, the magic must be `0x000008DD` with that dimension count.
///
/// # Errors
/// [`DatasetError::BadMagic`], [`DatasetError::UnsupportedType`], [`DatasetError::Truncated`]
/// or [`DatasetError::TrailingBytes`], with the file and byte offset.
pub fn parse_idx(mut bytes: Vec<u8>, name: &str, expected_ndim: Option<u8>) -> Result<IdxArray> {
    if bytes.len() < 4 {
        return Err(DatasetError::Truncated {
            file: name.to_owned(),
            offset: 0,
            what: "magic number",
            expected: 4,
            found: bytes.len() as u64,
        });
    }
    let magic = [bytes[0], bytes[1], bytes[2], bytes[3]];
    let bad_magic = || DatasetError::BadMagic {
        file: name.to_owned(),
        offset: 0,
        expected: match expected_ndim {
            Some(nd) => hex(&[0, 0, IDX_U8, nd]),
            None => "000008xx".to_owned(),
        },
        found: hex(&magic),
    };
    if magic[0] != 0 || magic[1] != 0 {
        return Err(bad_magic());
    }
    if magic[2] != IDX_U8 {
        return Err(DatasetError::UnsupportedType {
            file: name.to_owned(),
            offset: 2,
            found: format!("0x{:02x}", magic[2]),
            supported: "0x08 (unsigned byte)",
        });
    }
    let ndim = magic[3];
    if expected_ndim.is_some_and(|nd| nd != ndim) {
        return Err(bad_magic());
    }
    let dims_end = 4 + 4 * usize::from(ndim);
    if bytes.len() < dims_end {
        return Err(DatasetError::Truncated {
            file: name.to_owned(),
            offset: 4,
            what: "dimension sizes",
            expected: 4 * u64::from(ndim),
            found: (bytes.len() - 4) as u64,
        });
    }
    let dims: Vec<usize> = bytes[4..dims_end]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let count = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let available = bytes.len() - dims_end;
    match count {
        Some(c) if c == available => {}
        Some(c) if c > available => {
            return Err(DatasetError::Truncated {
                file: name.to_owned(),
                offset: dims_end as u64,
                what: "data",
                expected: c as u64,
                found: available as u64,
            })
        }
        Some(c) => {
            return Err(DatasetError::TrailingBytes {
                file: name.to_owned(),
                offset: (dims_end + c) as u64,
            })
        }
        None => {
            return Err(DatasetError::Truncated {
                file: name.to_owned(),
                offset: dims_end as u64,
                what: "data (size overflows)",
                expected: u64::MAX,
                found: available as u64,
            })
        }
    }
    bytes.drain(..dims_end); // in place: no second copy of a 47 MB image file
    Ok(IdxArray { dims, data: bytes })
}

/// Reads an unsigned-byte IDX file (plain or gzip'd) of any dimension.
///
/// # Errors
/// As [`parse_idx`], plus I/O errors naming the file.
pub fn read_idx(path: &Path) -> Result<IdxArray> {
    parse_idx(read_maybe_gzip(path)?, &display(path), None)
}

/// Reads an IDX image file (magic `0x00000803`) as `N × (rows·cols)` bytes, with `(rows, cols)`.
///
/// # Errors
/// As [`parse_idx`], plus I/O errors naming the file.
pub fn read_images(path: &Path) -> Result<(Array2<u8>, (usize, usize))> {
    let idx = parse_idx(read_maybe_gzip(path)?, &display(path), Some(3))?;
    let (n, rows, cols) = (idx.dims[0], idx.dims[1], idx.dims[2]);
    let images =
        Array2::from_shape_vec((n, rows * cols), idx.data).expect("size checked by parse_idx");
    Ok((images, (rows, cols)))
}

/// Reads an IDX label file (magic `0x00000801`); every label must be a digit 0..=9.
///
/// # Errors
/// As [`parse_idx`], plus [`DatasetError::InvalidValue`] (with offset) for a label above 9.
pub fn read_labels(path: &Path) -> Result<Array1<u8>> {
    let name = display(path);
    let idx = parse_idx(read_maybe_gzip(path)?, &name, Some(1))?;
    if let Some(i) = idx.data.iter().position(|&l| usize::from(l) >= N_CLASSES) {
        return Err(DatasetError::InvalidValue {
            file: name,
            offset: 8 + i as u64,
            value: idx.data[i].to_string(),
            expected: "a digit label 0..=9",
        });
    }
    Ok(Array1::from(idx.data))
}

/// MNIST images and labels of one split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mnist {
    /// Pixels, one row per image (`N × rows·cols`), 0 = background, 255 = ink.
    pub images: Array2<u8>,
    /// Digit labels 0..=9.
    pub labels: Array1<u8>,
    /// Image height.
    pub rows: usize,
    /// Image width.
    pub cols: usize,
    /// Name used for derived datasets (`"mnist-train"`, `"mnist-test"`, ...).
    pub name: String,
}

/// Paths of the bundled `(images, labels)` files of a split.
pub fn bundled_paths(split: Split) -> (PathBuf, PathBuf) {
    let dir = crate::data_dir().join("mnist");
    let p = split.prefix();
    (
        dir.join(format!("{p}-images.idx3-ubyte.gz")),
        dir.join(format!("{p}-labels.idx1-ubyte.gz")),
    )
}

/// Loads a split of the bundled MNIST (60,000 or 10,000 images of 28 × 28).
///
/// # Errors
/// I/O or format errors naming the bundled file.
pub fn load_bundled(split: Split) -> Result<Mnist> {
    let (images, labels) = bundled_paths(split);
    let mut m = load(&images, &labels)?;
    m.name = format!("mnist-{}", split.name());
    Ok(m)
}

/// Loads MNIST-format images and labels from explicit paths (plain or gzip'd).
///
/// # Errors
/// As [`read_images`] and [`read_labels`]; [`DatasetError::ShapeMismatch`] if the two files
/// hold different numbers of items.
pub fn load(images_path: &Path, labels_path: &Path) -> Result<Mnist> {
    let (images, (rows, cols)) = read_images(images_path)?;
    let labels = read_labels(labels_path)?;
    if labels.len() != images.nrows() {
        return Err(DatasetError::ShapeMismatch {
            file: display(labels_path),
            offset: 4,
            what: "number of labels vs number of images",
            expected: images.nrows().to_string(),
            found: labels.len().to_string(),
        });
    }
    Ok(Mnist {
        images,
        labels,
        rows,
        cols,
        name: "mnist".into(),
    })
}

impl Mnist {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Number of images of each digit.
    pub fn label_counts(&self) -> [usize; N_CLASSES] {
        let mut c = [0; N_CLASSES];
        for &l in &self.labels {
            c[usize::from(l)] += 1;
        }
        c
    }

    /// Pixels scaled to `[0, 1]` (divided by 255), one row per image.
    pub fn images_f64(&self) -> Array2<f64> {
        self.images.mapv(|p| f64::from(p) / 255.0)
    }

    /// The first `n` images (all if `n >= len()`).
    pub fn head(&self, n: usize) -> Mnist {
        let idx: Vec<usize> = (0..n.min(self.len())).collect();
        self.select(&idx)
    }

    fn select(&self, idx: &[usize]) -> Mnist {
        Mnist {
            images: self.images.select(Axis(0), idx),
            labels: self.labels.select(Axis(0), idx),
            rows: self.rows,
            cols: self.cols,
            name: self.name.clone(),
        }
    }

    fn pixel_names(&self) -> Vec<String> {
        (0..self.rows)
            .flat_map(|r| (0..self.cols).map(move |c| format!("pixel_{r}_{c}")))
            .collect()
    }

    /// A 10-class dataset: pixels in `[0, 1]`, `y` = digit.
    pub fn to_dataset(&self) -> Dataset {
        Dataset {
            name: self.name.clone(),
            x: self.images_f64(),
            y: self.labels.mapv(f64::from),
            feature_names: self.pixel_names(),
            task: Task::Classification {
                class_names: (0..N_CLASSES).map(|d| d.to_string()).collect(),
            },
        }
    }

    /// A binary task over all images: `y = 1` when the digit is in `positive`, else 0
    /// (e.g. `&[0]` for "zero vs rest", as in SecureML's logistic-regression experiments).
    ///
    /// # Errors
    /// [`DatasetError::InvalidArgument`] if `positive` is empty, holds all ten digits, or holds
    /// a value above 9.
    pub fn binary(&self, positive: &[u8]) -> Result<Dataset> {
        let all: Vec<u8> = (0..N_CLASSES as u8).collect();
        let negative: Vec<u8> = all.into_iter().filter(|d| !positive.contains(d)).collect();
        self.binary_between(positive, &negative)
    }

    /// A binary task restricted to the images whose digit is in `positive` (`y = 1`) or in
    /// `negative` (`y = 0`), e.g. `(&[3], &[8])` for "3 vs 8". Image order is kept.
    ///
    /// # Errors
    /// [`DatasetError::InvalidArgument`] if a side is empty, the sides overlap, or a digit is
    /// above 9.
    pub fn binary_between(&self, positive: &[u8], negative: &[u8]) -> Result<Dataset> {
        for &d in positive.iter().chain(negative) {
            if usize::from(d) >= N_CLASSES {
                return Err(DatasetError::InvalidArgument {
                    name: "digit",
                    value: f64::from(d),
                    constraint: "digits are 0..=9",
                });
            }
        }
        if positive.is_empty() || negative.is_empty() {
            return Err(DatasetError::InvalidArgument {
                name: "number of digits on a side",
                value: 0.0,
                constraint: "both classes need at least one digit",
            });
        }
        if let Some(&d) = positive.iter().find(|d| negative.contains(d)) {
            return Err(DatasetError::InvalidArgument {
                name: "digit on both sides",
                value: f64::from(d),
                constraint: "positive and negative digits must be disjoint",
            });
        }
        let idx: Vec<usize> = self
            .labels
            .iter()
            .enumerate()
            .filter(|(_, l)| positive.contains(l) || negative.contains(l))
            .map(|(i, _)| i)
            .collect();
        let sub = self.select(&idx);
        let describe = |ds: &[u8]| {
            ds.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join("")
        };
        let (pos, neg) = (describe(positive), describe(negative));
        Ok(Dataset {
            name: format!("{}-{pos}v{neg}", self.name),
            x: sub.images_f64(),
            y: sub
                .labels
                .mapv(|l| f64::from(u8::from(positive.contains(&l)))),
            feature_names: sub.pixel_names(),
            task: Task::Classification {
                class_names: vec![format!("digits {neg}"), format!("digits {pos}")],
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};
    use std::io::Write;

    fn idx_bytes(magic: [u8; 4], dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut b = magic.to_vec();
        for d in dims {
            b.extend_from_slice(&d.to_be_bytes());
        }
        b.extend_from_slice(data);
        b
    }

    #[test]
    fn bundled_files_match_sha256sums() {
        let dir = crate::data_dir().join("mnist");
        let sums = std::fs::read_to_string(dir.join("SHA256SUMS.uncompressed")).unwrap();
        let mut checked = 0;
        for line in sums.lines().filter(|l| !l.trim().is_empty()) {
            let (want, file) = line.split_once("  ").unwrap();
            let bytes = read_maybe_gzip(&dir.join(format!("{file}.gz"))).unwrap();
            let got: String = Sha256::digest(&bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(got, want, "{file}");
            checked += 1;
        }
        assert_eq!(checked, 4);
    }

    #[test]
    fn bundled_train_and_test_histograms() {
        let train = load_bundled(Split::Train).unwrap();
        assert_eq!(train.images.dim(), (60_000, 784));
        assert_eq!((train.rows, train.cols), (28, 28));
        assert_eq!(
            train.label_counts(),
            [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
        );
        // Canonical pixel statistics: mean 0.13066, std 0.30811 (in [0, 1] units).
        let n = train.images.len() as f64;
        let sum: f64 = train.images.iter().map(|&p| f64::from(p)).sum();
        let sum_sq: f64 = train.images.iter().map(|&p| f64::from(p).powi(2)).sum();
        let mean = sum / n / 255.0;
        let std = (sum_sq / n / 255.0f64.powi(2) - mean * mean).sqrt();
        assert!((mean - 0.13066).abs() < 5e-5, "{mean}");
        assert!((std - 0.30811).abs() < 5e-5, "{std}");

        let test = load_bundled(Split::Test).unwrap();
        assert_eq!(test.images.dim(), (10_000, 784));
        assert_eq!(
            test.label_counts(),
            [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
        );
        assert_eq!(test.name, "mnist-test");

        let ds = test.head(100).to_dataset();
        assert_eq!(ds.x.dim(), (100, 784));
        assert!(ds.x.iter().all(|&v| (0.0..=1.0).contains(&v)));
        assert!(ds.x.iter().any(|&v| v == 1.0));
        assert_eq!(ds.feature_names[28], "pixel_1_0");
        assert_eq!(ds.labels().unwrap()[0], usize::from(test.labels[0]));
    }

    #[test]
    fn binary_tasks() {
        let test = load_bundled(Split::Test).unwrap();
        let zero = test.binary(&[0]).unwrap();
        assert_eq!(zero.n_samples(), 10_000);
        assert_eq!(zero.class_counts().unwrap(), vec![10_000 - 980, 980]);
        let odd_even = test.binary(&[1, 3, 5, 7, 9]).unwrap();
        assert_eq!(
            odd_even.class_counts().unwrap()[1],
            1135 + 1010 + 892 + 1028 + 1009
        );
        let three_eight = test.binary_between(&[3], &[8]).unwrap();
        assert_eq!(three_eight.class_counts().unwrap(), vec![974, 1010]);
        assert_eq!(three_eight.name, "mnist-test-3v8");
        // Rows are the right images: a positive row equals the matching digit-3 image.
        let first3 = test.labels.iter().position(|&l| l == 3).unwrap();
        let row = three_eight.y.iter().position(|&y| y == 1.0).unwrap();
        assert_eq!(
            three_eight.x.row(row),
            test.images.row(first3).mapv(|p| f64::from(p) / 255.0)
        );

        assert!(test.binary(&[]).is_err());
        assert!(test.binary(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]).is_err());
        assert!(test.binary(&[10]).is_err());
        assert!(test.binary_between(&[1, 2], &[2]).is_err());
    }

    #[test]
    fn idx_errors_name_file_offset_expected_found() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("imgs.idx3-ubyte");
        // Labels magic where images are expected.
        std::fs::write(&p, idx_bytes([0, 0, 8, 1], &[2], &[1, 2])).unwrap();
        let e = read_images(&p).unwrap_err();
        let msg = e.to_string();
        assert!(
            matches!(e, DatasetError::BadMagic { offset: 0, .. }),
            "{msg}"
        );
        assert!(
            msg.contains("imgs.idx3-ubyte@0")
                && msg.contains("00000803")
                && msg.contains("00000801"),
            "{msg}"
        );
        // Float element type.
        std::fs::write(&p, idx_bytes([0, 0, 0x0d, 3], &[1, 1, 1], &[0; 4])).unwrap();
        let e = read_images(&p).unwrap_err();
        assert!(
            matches!(e, DatasetError::UnsupportedType { offset: 2, .. }),
            "{e}"
        );
        // Truncated data: 2 images of 2x2 need 8 bytes, 5 present, at offset 16.
        std::fs::write(&p, idx_bytes([0, 0, 8, 3], &[2, 2, 2], &[0; 5])).unwrap();
        let e = read_images(&p).unwrap_err();
        assert!(
            matches!(
                e,
                DatasetError::Truncated {
                    offset: 16,
                    expected: 8,
                    found: 5,
                    ..
                }
            ),
            "{e}"
        );
        // Trailing bytes.
        std::fs::write(&p, idx_bytes([0, 0, 8, 3], &[1, 2, 2], &[0; 6])).unwrap();
        let e = read_images(&p).unwrap_err();
        assert!(
            matches!(e, DatasetError::TrailingBytes { offset: 20, .. }),
            "{e}"
        );
        // Truncated dimension list.
        std::fs::write(&p, [0, 0, 8, 3, 0, 0]).unwrap();
        assert!(matches!(
            read_images(&p),
            Err(DatasetError::Truncated { offset: 4, .. })
        ));
        // Label out of range, reported with its offset.
        let l = dir.path().join("labels.idx1-ubyte");
        std::fs::write(&l, idx_bytes([0, 0, 8, 1], &[3], &[1, 12, 3])).unwrap();
        let e = read_labels(&l).unwrap_err();
        assert!(
            matches!(e, DatasetError::InvalidValue { offset: 9, .. }),
            "{e}"
        );
        // Count mismatch between images and labels.
        std::fs::write(&p, idx_bytes([0, 0, 8, 3], &[2, 1, 1], &[0, 255])).unwrap();
        std::fs::write(&l, idx_bytes([0, 0, 8, 1], &[3], &[1, 2, 3])).unwrap();
        assert!(matches!(
            load(&p, &l),
            Err(DatasetError::ShapeMismatch { .. })
        ));
    }

    #[test]
    fn small_gzip_idx_loads() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("i.gz");
        let l = dir.path().join("l");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&idx_bytes([0, 0, 8, 3], &[2, 1, 2], &[0, 255, 51, 102]))
            .unwrap();
        std::fs::write(&p, enc.finish().unwrap()).unwrap();
        std::fs::write(&l, idx_bytes([0, 0, 8, 1], &[2], &[7, 4])).unwrap();
        let m = load(&p, &l).unwrap();
        assert_eq!((m.rows, m.cols), (1, 2));
        assert_eq!(m.images_f64(), ndarray::array![[0.0, 1.0], [0.2, 0.4]]);
        let a = read_idx(&p).unwrap();
        assert_eq!(a.dims, vec![2, 1, 2]);
    }
}
