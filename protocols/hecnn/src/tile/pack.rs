//! Packing a plaintext tensor into the slot vectors of its tiles and reading it back: what the
//! client does before encrypting and after decrypting, and what the server does to encode its
//! weights. A tensor is given row-major over its shape's logical sizes
//! ([`TileShape::sizes`]: 1 for replicated and unknown dimensions). Packing copies a
//! replicated dimension's value into every index of its tile dimension, writes an unknown
//! dimension's value at index 0 and zeros elsewhere (the clean form), and zero-pads a full
//! dimension past its size; unpacking reads index 0 of replicated and unknown dimensions.

use super::shape::{flat, unflat, DimKind, TileShape};
use crate::error::{HeCnnError, Result};

/// The slot vectors of the tiles of `values` (row-major over `shape.sizes()`), tiles in
/// row-major grid order.
///
/// # Errors
/// [`HeCnnError::Shape`] if `values` does not hold `Π sizes` values.
pub fn pack(shape: &TileShape, values: &[f64]) -> Result<Vec<Vec<f64>>> {
    let sizes = shape.sizes();
    let n: usize = sizes.iter().product();
    if values.len() != n {
        return Err(HeCnnError::Shape {
            what: "tile tensor values",
            expected: n,
            found: values.len(),
        });
    }
    let grid = shape.grid();
    let tiles: Vec<usize> = shape.dims().iter().map(|d| d.tile).collect();
    let mut element = vec![0; sizes.len()];
    let out = (0..shape.tile_count())
        .map(|t| {
            let g = unflat(t, &grid);
            (0..shape.slots())
                .map(|s| {
                    let u = unflat(s, &tiles);
                    for (i, d) in shape.dims().iter().enumerate() {
                        element[i] = match d.kind {
                            DimKind::Full => g[i] * d.tile + u[i],
                            DimKind::Replicated => 0,
                            DimKind::Unknown if u[i] == 0 => 0,
                            DimKind::Unknown => return 0.0,
                        };
                        if element[i] >= d.size {
                            return 0.0;
                        }
                    }
                    values[flat(&element, &sizes)]
                })
                .collect()
        })
        .collect();
    Ok(out)
}

/// The tile and slot of logical element `element` (index 0 of replicated and unknown
/// dimensions).
pub fn locate(shape: &TileShape, element: &[usize]) -> (usize, usize) {
    let grid = shape.grid();
    let mut g = vec![0; element.len()];
    let mut slot = 0;
    for (i, d) in shape.dims().iter().enumerate() {
        let e = if d.kind == DimKind::Full {
            element[i]
        } else {
            0
        };
        g[i] = e / d.tile;
        slot += (e % d.tile) * shape.stride(i);
    }
    (flat(&g, &grid), slot)
}

/// The tensor (row-major over `shape.sizes()`) held by `tiles`.
///
/// # Errors
/// [`HeCnnError::Shape`] for a tile count other than the shape's, or a tile shorter than its
/// slots.
pub fn unpack(shape: &TileShape, tiles: &[Vec<f64>]) -> Result<Vec<f64>> {
    if tiles.len() != shape.tile_count() {
        return Err(HeCnnError::Shape {
            what: "tiles",
            expected: shape.tile_count(),
            found: tiles.len(),
        });
    }
    if let Some(t) = tiles.iter().find(|t| t.len() < shape.slots()) {
        return Err(HeCnnError::Shape {
            what: "slots of a tile",
            expected: shape.slots(),
            found: t.len(),
        });
    }
    let sizes = shape.sizes();
    let n: usize = sizes.iter().product();
    Ok((0..n)
        .map(|i| {
            let (t, s) = locate(shape, &unflat(i, &sizes));
            tiles[t][s]
        })
        .collect())
}
