//! The 128-bit classical security bound of the HomomorphicEncryption.org Security Standard v1.1
//! (Albrecht et al., 2018, table for a uniform ternary secret and errors of σ = 3.2), as a
//! function of the ring degree: N = 2^12 → 109 bits of modulus, 2^13 → 218, 2^14 → 438,
//! 2^15 → 881. The standard's table stops at 2^15; OpenFHE's extension of that table
//! (`lbcrypto::StdLatticeParm`, `HEStd_128_classic`, ternary secret) lists 1772 bits for
//! N = 2^16. We use **1761 bits**, 11 bits below OpenFHE's value: a more conservative bound than
//! any published table, so every set accepted here is also accepted by OpenFHE's check.
//!
//! The bound applies to the largest modulus any RLWE sample of the scheme lives under (for CKKS
//! with hybrid key switching, `Q_L·P`; for the RLWE triple source, `Q`). Every parameter set of
//! the workspace that claims 128-bit security is checked through [`meets_128_bit`].

/// The largest `log2` of the modulus with 128-bit classical security for a uniform ternary
/// secret at `N = 2^log_n`, or `None` if the standard (and its OpenFHE extension) has no entry.
pub fn max_log_qp_128(log_n: u32) -> Option<u32> {
    match log_n {
        12 => Some(109),
        13 => Some(218),
        14 => Some(438),
        15 => Some(881),
        // Not in the HE standard v1.1. OpenFHE's extension of its table (HEStd_128_classic)
        // lists 1772; 1761 is deliberately 11 bits more conservative.
        16 => Some(1761),
        _ => None,
    }
}

/// Whether a modulus of `log_q` bits at `N = 2^log_n` meets the 128-bit bound of
/// [`max_log_qp_128`] (false where the table has no entry, e.g. for test degrees).
pub fn meets_128_bit(log_n: u32, log_q: f64) -> bool {
    max_log_qp_128(log_n).is_some_and(|bound| log_q <= bound as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn security_bounds_never_exceed_the_published_tables() {
        // HE standard v1.1 (ternary secret, 128-bit classical) for 2^12..2^15, and OpenFHE's
        // extension of that table (HEStd_128_classic) for 2^16: our bound may be lower, never higher.
        let published = [(12, 109), (13, 218), (14, 438), (15, 881), (16, 1772)];
        for (log_n, max) in published {
            let ours = max_log_qp_128(log_n).unwrap();
            assert!(ours <= max, "log N = {log_n}: {ours} > {max}");
        }
        assert_eq!(max_log_qp_128(16), Some(1761));
        assert_eq!(max_log_qp_128(17), None);
    }

    #[test]
    fn the_check_follows_the_table() {
        assert!(meets_128_bit(14, 438.0));
        assert!(!meets_128_bit(14, 438.1));
        assert!(meets_128_bit(13, 100.0));
        assert!(!meets_128_bit(11, 10.0));
        assert!(!meets_128_bit(17, 10.0));
    }
}
