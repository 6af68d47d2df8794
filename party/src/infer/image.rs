//! Reading one image for `he-infer` on a CNN model (`ml::models::cnn`: MNIST digits, white ink
//! on black, as the bundled MNIST is stored), scaled as the models were trained: pixel / 255,
//! in `[0, 1]`.
//!
//! * **PNG** — 8-bit grayscale or RGB (RGB is reduced to its luma `0.299 R + 0.587 G + 0.114 B`),
//!   `side × side` pixels; any other colour type or depth (palette, alpha, 16-bit) is refused
//!   with what was found. The size is checked from the header, before the pixels are decoded.
//! * **NPY** — `side × side` or `side²` values (any float or integer type), already scaled
//!   to `[0, 1]`.
//!
//! Every error names the file and what was expected.

use std::io::BufReader;
use std::path::{Path, PathBuf};

/// Largest decoder allocation for one PNG (a 28 × 28 RGB image needs 2.3 KiB).
const PNG_MAX_BYTES: usize = 1 << 20;

/// Errors reading an image.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    /// The file cannot be read.
    #[error("{}: {source}", file.display())]
    Io {
        /// The file.
        file: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The PNG decoder refused the file.
    #[error("{}: not a readable PNG: {source}", file.display())]
    Png {
        /// The file.
        file: PathBuf,
        /// The cause.
        source: png::DecodingError,
    },
    /// A PNG of a colour type or bit depth this reader does not take.
    #[error("{}: a {color} PNG of {bits} bits per sample; he-infer reads 8-bit grayscale or RGB", file.display())]
    Format {
        /// The file.
        file: PathBuf,
        /// The colour type found.
        color: String,
        /// Bits per sample found.
        bits: u8,
    },
    /// The image does not have the model's size.
    #[error("{}: {found}, the model takes {expected}", file.display())]
    Size {
        /// The file.
        file: PathBuf,
        /// What was found (`"30 × 28 pixels"`, `"shape [5, 5]"`).
        found: String,
        /// What the model takes.
        expected: String,
    },
    /// A value is not finite, or outside `[0, 1]`.
    #[error("{}: value {index} (flat, row-major) is {value}; pixels are scaled to [0, 1] (MNIST bytes / 255)", file.display())]
    Value {
        /// The file.
        file: PathBuf,
        /// Flat index.
        index: usize,
        /// The value.
        value: f64,
    },
    /// The NPY reader refused the file.
    #[error("{}: {source}", file.display())]
    Npy {
        /// The file.
        file: PathBuf,
        /// The cause.
        source: datasets::DatasetError,
    },
}

/// Reads a `side × side` image from PNG or NPY (by extension: `.npy` / `.npy.gz` is NPY, any
/// other PNG), row-major, pixels in `[0, 1]`.
///
/// # Errors
/// [`ImageError`] naming the file.
pub fn read_image(path: &Path, side: usize) -> Result<Vec<f64>, ImageError> {
    let name = path.to_string_lossy();
    let x = if name.ends_with(".npy") || name.ends_with(".npy.gz") {
        read_npy(path, side)?
    } else {
        read_png(path, side)?
    };
    match x
        .iter()
        .enumerate()
        .find(|(_, v)| !(0.0..=1.0).contains(*v))
    {
        Some((index, &value)) => Err(ImageError::Value {
            file: path.to_path_buf(),
            index,
            value,
        }),
        None => Ok(x),
    }
}

/// The pixels of an 8-bit grayscale or RGB PNG of `side × side`, divided by 255.
fn read_png(path: &Path, side: usize) -> Result<Vec<f64>, ImageError> {
    let file = path.to_path_buf();
    let f = std::fs::File::open(path).map_err(|source| ImageError::Io {
        file: file.clone(),
        source,
    })?;
    let png_err = |source| ImageError::Png {
        file: path.to_path_buf(),
        source,
    };
    let mut dec = png::Decoder::new_with_limits(
        BufReader::new(f),
        png::Limits {
            bytes: PNG_MAX_BYTES,
        },
    );
    dec.set_transformations(png::Transformations::IDENTITY);
    let mut reader = dec.read_info().map_err(png_err)?;
    let (w, h) = reader.info().size();
    if (w as usize, h as usize) != (side, side) {
        return Err(ImageError::Size {
            file,
            found: format!("{w} × {h} pixels"),
            expected: format!("{side} × {side}"),
        });
    }
    let (color, depth) = reader.output_color_type();
    let channels = match (color, depth) {
        (png::ColorType::Grayscale, png::BitDepth::Eight) => 1,
        (png::ColorType::Rgb, png::BitDepth::Eight) => 3,
        _ => {
            return Err(ImageError::Format {
                file,
                color: format!("{color:?}"),
                bits: depth as u8,
            })
        }
    };
    let mut buf = vec![0u8; side * side * channels];
    let out = reader.next_frame(&mut buf).map_err(png_err)?;
    let bytes = &buf[..out.buffer_size()];
    Ok(bytes
        .chunks_exact(channels)
        .map(|p| match p {
            [g] => f64::from(*g) / 255.0,
            [r, g, b] => {
                (0.299 * f64::from(*r) + 0.587 * f64::from(*g) + 0.114 * f64::from(*b)) / 255.0
            }
            _ => unreachable!("one or three channels"),
        })
        .collect())
}

/// The values of an NPY array of shape `(side, side)` or `(side²)`, each finite.
fn read_npy(path: &Path, side: usize) -> Result<Vec<f64>, ImageError> {
    let a = datasets::npy::read_npy_f64(path).map_err(|source| ImageError::Npy {
        file: path.to_path_buf(),
        source,
    })?;
    let ok = matches!(a.shape(), [s] if *s == side * side)
        || matches!(a.shape(), [r, c] if (*r, *c) == (side, side));
    if !ok {
        return Err(ImageError::Size {
            file: path.to_path_buf(),
            found: format!("shape {:?}", a.shape()),
            expected: format!("[{side}, {side}] or [{}]", side * side),
        });
    }
    Ok(a.iter().copied().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array1, Array2};

    fn write_png(
        path: &Path,
        w: u32,
        h: u32,
        color: png::ColorType,
        depth: png::BitDepth,
        data: &[u8],
    ) {
        let f = std::fs::File::create(path).unwrap();
        let mut e = png::Encoder::new(std::io::BufWriter::new(f), w, h);
        e.set_color(color);
        e.set_depth(depth);
        e.write_header().unwrap().write_image_data(data).unwrap();
    }

    #[test]
    fn grayscale_and_rgb_pngs_are_scaled_to_the_unit_interval() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.png");
        let gray: Vec<u8> = (0..16).map(|i| (i * 17) as u8).collect();
        write_png(
            &p,
            4,
            4,
            png::ColorType::Grayscale,
            png::BitDepth::Eight,
            &gray,
        );
        let x = read_image(&p, 4).unwrap();
        assert_eq!(x.len(), 16);
        assert_eq!(x[0], 0.0);
        assert_eq!(x[15], 1.0);
        assert!((x[5] - 85.0 / 255.0).abs() < 1e-12);
        let rgb: Vec<u8> = gray.iter().flat_map(|&g| [g, g, g]).collect();
        write_png(&p, 4, 4, png::ColorType::Rgb, png::BitDepth::Eight, &rgb);
        let y = read_image(&p, 4).unwrap();
        for (a, b) in x.iter().zip(&y) {
            assert!((a - b).abs() < 1e-9, "{a} vs {b}");
        }
    }

    #[test]
    fn pngs_of_the_wrong_size_or_depth_are_refused_naming_what_was_found() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("digit.png");
        write_png(
            &p,
            5,
            4,
            png::ColorType::Grayscale,
            png::BitDepth::Eight,
            &[0; 20],
        );
        let e = read_image(&p, 4).unwrap_err().to_string();
        assert!(
            e.contains("digit.png: 5 × 4 pixels, the model takes 4 × 4"),
            "{e}"
        );
        write_png(
            &p,
            4,
            4,
            png::ColorType::Grayscale,
            png::BitDepth::Sixteen,
            &[0; 32],
        );
        let e = read_image(&p, 4).unwrap_err();
        assert!(matches!(e, ImageError::Format { bits: 16, .. }), "{e}");
        write_png(
            &p,
            4,
            4,
            png::ColorType::Rgba,
            png::BitDepth::Eight,
            &[0; 64],
        );
        let e = read_image(&p, 4).unwrap_err().to_string();
        assert!(e.contains("a Rgba PNG of 8 bits per sample"), "{e}");
        std::fs::write(&p, b"not a png").unwrap();
        assert!(matches!(read_image(&p, 4), Err(ImageError::Png { .. })));
    }

    #[test]
    fn npy_images_take_both_shapes_and_refuse_bad_values() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.npy");
        let a = Array2::from_shape_fn((3, 3), |(r, c)| (r * 3 + c) as f64 / 8.0);
        datasets::npy::write_npy(&p, &a).unwrap();
        assert_eq!(
            read_image(&p, 3).unwrap(),
            a.iter().copied().collect::<Vec<_>>()
        );
        let flat = Array1::from_iter(a.iter().map(|&v| v as f32));
        datasets::npy::write_npy(&p, &flat).unwrap();
        let x = read_image(&p, 3).unwrap();
        assert!((x[4] - 0.5).abs() < 1e-7);
        let e = read_image(&p, 4).unwrap_err().to_string();
        assert!(
            e.contains("shape [9], the model takes [4, 4] or [16]"),
            "{e}"
        );
        let mut bad = a.clone();
        bad[[1, 2]] = f64::NAN;
        datasets::npy::write_npy(&p, &bad).unwrap();
        let e = read_image(&p, 3).unwrap_err();
        assert!(matches!(e, ImageError::Value { index: 5, .. }), "{e}");
        bad[[1, 2]] = 255.0;
        datasets::npy::write_npy(&p, &bad).unwrap();
        let e = read_image(&p, 3).unwrap_err().to_string();
        assert!(e.contains("value 5 (flat, row-major) is 255"), "{e}");
    }
}
