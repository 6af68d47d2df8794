//! Tile tensor shapes (HElayers, Aharoni et al., PoPETs 2023, §3): a tensor of `k` dimensions
//! cut into tiles of `t_1 × … × t_k` values, `t_1·…·t_k` = the slot count, one tile per
//! ciphertext. A dimension is *full* (size `d`, split over `⌈d/t⌉` tiles), *replicated*
//! (`*`: one value copied into every index of the tile dimension, one tile), or *unknown*
//! (`?`: the value at index 0, other indices garbage — what a rotate-and-sum over an inner
//! dimension leaves). Inside a tile the slot of in-tile index `(u_1, …, u_k)` is
//! `Σ u_i·stride_i` with `stride_i = t_{i+1}·…·t_k` (the first dimension outermost); tiles
//! are numbered row-major over their grid. Plain index arithmetic, no ciphertext.

use crate::error::{HeCnnError, Result};

/// What a tile dimension holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DimKind {
    /// `size` values over `⌈size/tile⌉` tiles (zero past `size`).
    Full,
    /// One value copied into every index of the tile dimension (`*`).
    Replicated,
    /// One value at index 0, anything elsewhere (`?`).
    Unknown,
}

/// One dimension of a tile tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TileDim {
    /// The dimension's name (`taps`, `features`, `hidden`, `classes`, `batch`).
    pub name: &'static str,
    /// Logical size (1 for replicated and unknown dimensions).
    pub size: usize,
    /// Tile size (a power of two).
    pub tile: usize,
    /// What the dimension holds.
    pub kind: DimKind,
}

impl TileDim {
    /// A full dimension of `size` values in tiles of `tile`.
    pub fn full(name: &'static str, size: usize, tile: usize) -> Self {
        Self {
            name,
            size,
            tile,
            kind: DimKind::Full,
        }
    }

    /// A replicated dimension (`*`) in tiles of `tile`.
    pub fn replicated(name: &'static str, tile: usize) -> Self {
        Self {
            name,
            size: 1,
            tile,
            kind: DimKind::Replicated,
        }
    }

    /// Tiles along this dimension.
    pub fn extent(&self) -> usize {
        match self.kind {
            DimKind::Full => self.size.div_ceil(self.tile),
            DimKind::Replicated | DimKind::Unknown => 1,
        }
    }
}

/// The shape of a tile tensor: its dimensions, outermost first.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TileShape {
    dims: Vec<TileDim>,
}

impl TileShape {
    /// A shape of `dims` (outermost first) for ciphertexts of `slots` slots.
    ///
    /// # Errors
    /// [`HeCnnError::Packing`] for a tile size that is not a power of two, a full dimension
    /// of size 0, a replicated or unknown dimension of size other than 1, or tile sizes whose
    /// product is not `slots`.
    pub fn new(dims: Vec<TileDim>, slots: usize) -> Result<Self> {
        let bad = |what, value, limit| HeCnnError::Packing {
            layer: "tile shape",
            what,
            value,
            limit,
        };
        for d in &dims {
            if !d.tile.is_power_of_two() {
                return Err(bad("tile size (a power of two)", d.tile, slots));
            }
            match d.kind {
                DimKind::Full if d.size == 0 => return Err(bad("full dimension size", 0, 1)),
                DimKind::Replicated | DimKind::Unknown if d.size != 1 => {
                    return Err(bad("replicated or unknown dimension size", d.size, 1))
                }
                _ => {}
            }
        }
        let product: usize = dims.iter().map(|d| d.tile).product();
        if product != slots {
            return Err(bad(
                "product of the tile sizes (the slot count)",
                product,
                slots,
            ));
        }
        Ok(Self { dims })
    }

    /// The dimensions, outermost first.
    pub fn dims(&self) -> &[TileDim] {
        &self.dims
    }

    /// Dimension `i`.
    pub fn dim(&self, i: usize) -> &TileDim {
        &self.dims[i]
    }

    /// The shape with dimension `i` replaced by `d` (same tile size).
    pub(crate) fn with_dim(&self, i: usize, d: TileDim) -> Self {
        debug_assert_eq!(d.tile, self.dims[i].tile);
        let mut dims = self.dims.clone();
        dims[i] = d;
        Self { dims }
    }

    /// Slots per tile.
    pub fn slots(&self) -> usize {
        self.dims.iter().map(|d| d.tile).product()
    }

    /// Slot distance between consecutive in-tile indices of dimension `i`.
    pub fn stride(&self, i: usize) -> usize {
        self.dims[i + 1..].iter().map(|d| d.tile).product()
    }

    /// Tiles along each dimension.
    pub fn grid(&self) -> Vec<usize> {
        self.dims.iter().map(TileDim::extent).collect()
    }

    /// Number of tiles (ciphertexts).
    pub fn tile_count(&self) -> usize {
        self.grid().iter().product()
    }

    /// Logical sizes (1 for replicated and unknown dimensions).
    pub fn sizes(&self) -> Vec<usize> {
        self.dims.iter().map(|d| d.size).collect()
    }

    /// HElayers' notation, e.g. `[25/1, 845/128, */64, 1/1]` (`*` replicated, `?` unknown).
    pub fn label(&self) -> String {
        let parts: Vec<String> = self
            .dims
            .iter()
            .map(|d| match d.kind {
                DimKind::Full => format!("{}/{}", d.size, d.tile),
                DimKind::Replicated => format!("*/{}", d.tile),
                DimKind::Unknown => format!("?/{}", d.tile),
            })
            .collect();
        format!("[{}]", parts.join(", "))
    }
}

/// Row-major index of `coords` in a grid of `extents`.
pub(crate) fn flat(coords: &[usize], extents: &[usize]) -> usize {
    coords
        .iter()
        .zip(extents)
        .fold(0, |acc, (&c, &e)| acc * e + c)
}

/// The coordinates of row-major index `i` in a grid of `extents`.
pub(crate) fn unflat(mut i: usize, extents: &[usize]) -> Vec<usize> {
    let mut c = vec![0; extents.len()];
    for (k, &e) in extents.iter().enumerate().rev() {
        c[k] = i % e;
        i /= e;
    }
    c
}
