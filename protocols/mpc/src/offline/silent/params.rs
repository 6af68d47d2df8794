//! Primal-LPN parameter sets with regular noise: `n` outputs per iteration from `k` seed COTs
//! (the LPN secret) and `t` GGM trees of `2^h` leaves each (one noisy position per tree), so
//! `n = t · 2^h`. An iteration consumes `k + t·h` seed COTs ([`LpnParams::seeds`]).
//!
//! The two sets are those of emp-ot's Ferret (`emp-ot/ferret/constants.h`, the reference
//! implementation by Ferret's authors), chosen there for 128-bit computational security against
//! the known attacks on LPN with regular noise and a local (d = 10) code:
//!
//! * [`FERRET_MAIN`]: n = 10,608,640, k = 589,824, t = 1,295, h = 13 (the steady-state set);
//! * [`FERRET_PRE`]: n = 649,728, k = 36,288, t = 1,269, h = 9 (the bootstrap set, seeded by
//!   IKNP, whose output is enough to seed one [`FERRET_MAIN`] iteration).

use crate::error::{MpcError, Result};

/// Non-zero entries per row of the local linear code (Ferret's d).
pub const CODE_WEIGHT: usize = 10;

/// One primal-LPN parameter set with regular noise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LpnParams {
    /// Outputs per iteration (`t · 2^h`).
    pub n: usize,
    /// Seed COTs expanded by the code (the LPN dimension).
    pub k: usize,
    /// Noise weight: GGM trees per iteration.
    pub t: usize,
    /// Depth of every tree (`2^h` leaves).
    pub h: usize,
}

/// Ferret's steady-state set (emp-ot `N_REG`, `K_REG`, `T_REG`, `BIN_SZ_REG`).
pub const FERRET_MAIN: LpnParams = LpnParams {
    n: 10_608_640,
    k: 589_824,
    t: 1_295,
    h: 13,
};

/// Ferret's bootstrap set (emp-ot `N_PRE_REG`, `K_PRE_REG`, `T_PRE_REG`, `BIN_SZ_PRE_REG`).
pub const FERRET_PRE: LpnParams = LpnParams {
    n: 649_728,
    k: 36_288,
    t: 1_269,
    h: 9,
};

impl LpnParams {
    /// Seed COTs one iteration consumes: `k` for the code and `h` per tree.
    pub const fn seeds(&self) -> usize {
        self.k + self.t * self.h
    }

    /// Seed COTs rounded up to whole 64-COT words (what an iteration reserves).
    pub const fn seed_words(&self) -> usize {
        self.seeds().div_ceil(64)
    }

    /// Leaves per tree.
    pub const fn leaves(&self) -> usize {
        1 << self.h
    }

    /// Checks the shape: `n = t · 2^h`, `1 ≤ h ≤ 24`, `CODE_WEIGHT ≤ k < 2^32`, `n` a multiple of
    /// 64 and larger than the seeds it consumes.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: String| {
            Err(MpcError::Malformed {
                reason: format!("silent OT parameters {self:?}: {what}"),
            })
        };
        if !(1..=24).contains(&self.h) {
            return bad(format!("tree depth h = {} outside 1..=24", self.h));
        }
        if self.t == 0 || self.t.checked_mul(self.leaves()) != Some(self.n) {
            return bad(format!(
                "n = {} is not t · 2^h = {} · {}",
                self.n,
                self.t,
                self.leaves()
            ));
        }
        if self.k < CODE_WEIGHT || self.k >= 1 << 32 {
            return bad(format!("k = {} outside {CODE_WEIGHT}..2^32", self.k));
        }
        if !self.n.is_multiple_of(64) || self.n <= 64 * self.seed_words() {
            return bad(format!(
                "n = {} must be a multiple of 64 above the {} seeds it consumes",
                self.n,
                64 * self.seed_words()
            ));
        }
        Ok(())
    }
}

/// The parameter chain of a silent extension: the first iteration runs `bootstrap` on seeds from
/// IKNP, every later one runs `steady` on seeds reserved from the previous iteration's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SilentParams {
    /// First iteration.
    pub bootstrap: LpnParams,
    /// Every later iteration.
    pub steady: LpnParams,
}

/// Ferret's chain: [`FERRET_PRE`] then [`FERRET_MAIN`].
pub const FERRET: SilentParams = SilentParams {
    bootstrap: FERRET_PRE,
    steady: FERRET_MAIN,
};

impl SilentParams {
    /// COTs a steady iteration adds to the pool (its outputs less the next iteration's seeds,
    /// rounded to whole words).
    pub const fn kept(&self) -> usize {
        self.steady.n - 64 * self.steady.seed_words()
    }

    /// COTs the bootstrap iteration adds to the pool.
    pub const fn kept_bootstrap(&self) -> usize {
        self.bootstrap.n - 64 * self.steady.seed_words()
    }

    /// Checks both sets, and that each iteration's output covers the next iteration's seeds with
    /// COTs to spare.
    pub fn validate(&self) -> Result<()> {
        self.bootstrap.validate()?;
        self.steady.validate()?;
        for (from, name) in [(self.bootstrap, "bootstrap"), (self.steady, "steady")] {
            if from.n <= 64 * self.steady.seed_words() {
                return Err(MpcError::Malformed {
                    reason: format!(
                        "silent OT parameters: the {name} set's n = {} cannot seed a steady \
                         iteration ({} seed COTs) with outputs to spare",
                        from.n,
                        64 * self.steady.seed_words()
                    ),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ferret_sets_are_consistent() {
        FERRET.validate().unwrap();
        // emp-ot's comments: the steady set needs 606,787 pre-OTs with its 128 check COTs, so
        // 606,659 without them.
        assert_eq!(FERRET_MAIN.seeds(), 606_659);
        assert_eq!(FERRET_PRE.seeds(), 47_709);
        assert_eq!(
            (FERRET.kept(), FERRET.kept_bootstrap()),
            (10_001_920, 43_008)
        );
    }

    #[test]
    fn bad_shapes_are_named() {
        let p = LpnParams {
            n: 1000,
            ..FERRET_PRE
        };
        let e = p.validate().unwrap_err().to_string();
        assert!(e.contains("n = 1000"), "{e}");
        let chain = SilentParams {
            bootstrap: FERRET_PRE,
            steady: FERRET_PRE,
        };
        chain.validate().unwrap();
        let chain = SilentParams {
            bootstrap: FERRET_PRE,
            steady: FERRET_MAIN,
        };
        chain.validate().unwrap();
        let tiny = LpnParams {
            n: 64 * 1024,
            k: 65_000,
            t: 64,
            h: 10,
        };
        assert!(tiny.validate().is_err());
    }
}
