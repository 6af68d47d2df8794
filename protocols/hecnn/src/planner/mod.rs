//! The packing planner: given a model and an objective (the latency of one image, or the
//! throughput of a batch), enumerate the plans this crate can run, price each with this
//! machine's probed operation costs, choose the best and explain it.
//!
//! * **Candidates** ([`candidates`]): the batch layout ([`crate::batch`]) and the single-image
//!   layout ([`crate::lola`]) with every distinct baby-step/giant-step split of each dense
//!   layer ([`crate::lola::LolaPlan::split_choices`]), and the matrix layout
//!   ([`crate::matrix::MatrixPlan`]: a batch per ciphertext), each at the smallest 128-bit preset
//!   that leaves its depth ([`crate::plan::choose_preset`]: a larger preset only makes every
//!   operation dearer for these depths); the tile layout ([`crate::tile`]) with every tiling
//!   `[t_f, t_h, t_b]` of the slots ([`crate::tile::CnnTiling::all`]: single image and
//!   batches) whose input fits [`crate::tile::MAX_INPUT_CTS`] ciphertexts. A layout whose features do not fit is left out. A
//!   new layout plugs in through [`Candidate::of_layout`]: anything implementing
//!   [`crate::CnnLayout`] with its [`crate::CnnLayout::planned_stages`].
//! * **Costs** ([`probe_costs`]): [`ckks::cost::probe`] at the stages' levels, once per preset
//!   and thread count (in a rayon pool of that many threads).
//! * **Estimate** ([`estimate()`]): the sum over stages of [`ckks::cost::OpCosts::price`] at the
//!   stage's level, plus sanitizing each returned ciphertext at level 0.
//! * **Choice** ([`choose`]): every candidate on every probed thread count, ranked by the
//!   objective: seconds per forward pass for [`Objective::Latency`] (a batch answers its
//!   first image no sooner than its last), images per second for [`Objective::Throughput`].
//! * **Explanation** ([`Plan::table`], [`Plan::ranking`]): a table of the chosen plan's stages
//!   (layer, layout, level, operations, estimated seconds) and one of the best plan of each
//!   layout and thread count; [`Plan::variants`] lists the best variants (splits, tile
//!   shapes) of one layout.
//!
//! **What the model leaves out.** The operations of a stage are priced one after the other
//! with costs measured one at a time: the probe on `t` threads captures the parallelism inside
//! an operation (its limbs, its two components) but not that between independent operations
//! of a stage (the layouts' `par_iter` over taps, neurons or giant steps), nor the memory
//! traffic of thousands of ciphertexts that do not fit the caches (the batch layout). The
//! client's encryption and decryption and the transfers are not part of the estimate (the
//! measured latency it is checked against is the server's forward pass and sanitizing).
//!
//! **Security.** The planner chooses among public functions of the model's shape and the
//! parameters; its choice (layout, preset, splits) is as public as the layouts' own
//! (rotation steps, arrangement). The probe uses keys of its own.

mod candidates;
mod estimate;
mod table;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_tile;

pub use candidates::{candidates, Candidate};
pub use estimate::{choose, estimate, probe_costs, Estimate, Plan};

/// What the planner optimises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Objective {
    /// Seconds until one image's answer: the time of one forward pass.
    Latency,
    /// Images per second: images per forward pass over its time.
    Throughput,
}

impl Objective {
    /// `"latency"` or `"throughput"`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Latency => "latency",
            Self::Throughput => "throughput",
        }
    }
}

impl std::str::FromStr for Objective {
    type Err = crate::HeCnnError;

    fn from_str(s: &str) -> crate::Result<Self> {
        match s {
            "latency" => Ok(Self::Latency),
            "throughput" => Ok(Self::Throughput),
            other => Err(crate::HeCnnError::Planner {
                what: "objective (\"latency\" or \"throughput\")",
                value: other.to_string(),
            }),
        }
    }
}
