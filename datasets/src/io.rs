//! Opening data files, transparently decompressing gzip (RFC 1952).
//!
//! A file is treated as gzip when it starts with the gzip magic bytes `1f 8b`, whatever its name,
//! so `digits.csv.gz` and a renamed copy both load. Multi-member gzip streams are read whole.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use flate2::read::MultiGzDecoder;

use crate::error::{DatasetError, Result};

/// The two bytes every gzip member starts with.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Display name of a path for error messages.
pub(crate) fn display(path: &Path) -> String {
    path.display().to_string()
}

/// Opens `path` for buffered reading, decompressing it if it is gzip.
///
/// # Errors
/// [`DatasetError::Io`] naming the file if it cannot be opened or its first bytes cannot be read.
pub fn open_maybe_gzip(path: &Path) -> Result<Box<dyn BufRead>> {
    let name = display(path);
    let file = File::open(path).map_err(|e| DatasetError::io(&name, e))?;
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let is_gzip = {
        let head = reader.fill_buf().map_err(|e| DatasetError::io(&name, e))?;
        head.len() >= 2 && head[..2] == GZIP_MAGIC
    };
    if is_gzip {
        Ok(Box::new(BufReader::with_capacity(
            1 << 16,
            MultiGzDecoder::new(reader),
        )))
    } else {
        Ok(Box::new(reader))
    }
}

/// Reads the whole of `path` into memory, decompressing it if it is gzip.
///
/// # Errors
/// [`DatasetError::Io`] naming the file (this includes corrupt gzip data).
pub fn read_maybe_gzip(path: &Path) -> Result<Vec<u8>> {
    let name = display(path);
    let mut reader = open_maybe_gzip(path)?;
    let mut bytes = Vec::new();
    reader
        .read_to_end(&mut bytes)
        .map_err(|e| DatasetError::io(&name, e))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{write::GzEncoder, Compression};
    use std::io::Write;

    #[test]
    fn reads_plain_and_gzip_alike() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("a.txt");
        std::fs::write(&plain, b"hello\nworld\n").unwrap();
        // gzip content under a name without .gz: detection is by magic bytes.
        let gz = dir.path().join("b.bin");
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(b"hello\nworld\n").unwrap();
        std::fs::write(&gz, enc.finish().unwrap()).unwrap();
        assert_eq!(read_maybe_gzip(&plain).unwrap(), b"hello\nworld\n");
        assert_eq!(read_maybe_gzip(&gz).unwrap(), b"hello\nworld\n");
    }

    #[test]
    fn corrupt_gzip_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let gz = dir.path().join("broken.csv.gz");
        std::fs::write(&gz, [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff]).unwrap();
        let err = read_maybe_gzip(&gz).unwrap_err();
        assert!(matches!(err, DatasetError::Io { .. }));
        assert!(err.to_string().contains("broken.csv.gz"), "{err}");
    }

    #[test]
    fn missing_file_names_the_file() {
        let err = read_maybe_gzip(Path::new("/nonexistent/dir/x.csv")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/dir/x.csv"), "{err}");
    }
}
