//! Test helpers shared by the tests of every triple source: one request of every kind and the
//! checks of a pool made for it.

use super::{Lhs, Preprocessing, TripleRequest};

/// One request of every kind (fresh, mask rows, mask rows transposed, elementwise, AND, leaf OT,
/// random OT),
/// for the tests of every triple source.
pub(crate) fn sample_requests() -> Vec<TripleRequest> {
    vec![
        TripleRequest::Mask {
            id: 1,
            rows: 10,
            cols: 4,
        },
        TripleRequest::Matmul {
            lhs: Lhs::Fresh { rows: 3, inner: 5 },
            cols: 2,
        },
        TripleRequest::Matmul {
            lhs: Lhs::Mask {
                id: 1,
                rows: vec![0, 7, 3],
                transpose: false,
            },
            cols: 1,
        },
        TripleRequest::Matmul {
            lhs: Lhs::Mask {
                id: 1,
                rows: vec![9, 2],
                transpose: true,
            },
            cols: 3,
        },
        TripleRequest::Elementwise { rows: 4, cols: 4 },
        TripleRequest::And { words: 5 },
        TripleRequest::LeafOt { count: 70, bits: 3 },
        TripleRequest::Rot { count: 70 },
    ]
}

/// Checks a pair of pools made for [`sample_requests`]: every item reconstructs correctly (fresh,
/// mask rows, mask rows transposed, elementwise, AND, leaf and random OTs), the pools drain, and further use is refused.
pub(crate) fn check_sample_pool(p0: &mut Preprocessing, p1: &mut Preprocessing) {
    use crate::ring;
    use crate::share::reconstruct;
    let u = reconstruct(p0.mask(1).unwrap(), p1.mask(1).unwrap());
    assert_eq!(u.dim(), (10, 4));
    let l = Lhs::Fresh { rows: 3, inner: 5 };
    let (t0, t1) = (
        p0.next_matmul(&l, 2).unwrap(),
        p1.next_matmul(&l, 2).unwrap(),
    );
    assert_eq!((t0.v.dim(), t0.z.dim()), ((5, 2), (3, 2)));
    let uu = reconstruct(t0.u.as_ref().unwrap(), t1.u.as_ref().unwrap());
    let v = reconstruct(&t0.v, &t1.v);
    assert_eq!(
        reconstruct(&t0.z, &t1.z),
        ring::matmul(&uu.view(), &v.view())
    );
    for (rows, t, cols) in [(vec![0, 7, 3], false, 1), (vec![9, 2], true, 3)] {
        let l = Lhs::Mask {
            id: 1,
            rows: rows.clone(),
            transpose: t,
        };
        let (t0, t1) = (
            p0.next_matmul(&l, cols).unwrap(),
            p1.next_matmul(&l, cols).unwrap(),
        );
        assert!(t0.u.is_none() && t1.u.is_none());
        let ub = ring::select_rows(&u.view(), &rows);
        let ub = if t { ub.t().to_owned() } else { ub };
        let v = reconstruct(&t0.v, &t1.v);
        assert_eq!(v.dim(), (ub.ncols(), cols));
        assert_eq!(
            reconstruct(&t0.z, &t1.z),
            ring::matmul(&ub.view(), &v.view())
        );
    }
    let (e0, e1) = (
        p0.next_elementwise((4, 4)).unwrap(),
        p1.next_elementwise((4, 4)).unwrap(),
    );
    let a = reconstruct(&e0.a, &e1.a);
    let b = reconstruct(&e0.b, &e1.b);
    assert_eq!(
        reconstruct(&e0.c, &e1.c),
        ring::hadamard(&a.view(), &b.view())
    );
    let (a0, a1) = (p0.next_and(5).unwrap(), p1.next_and(5).unwrap());
    for i in 0..5 {
        assert_eq!((a0.a[i] ^ a1.a[i]) & (a0.b[i] ^ a1.b[i]), a0.c[i] ^ a1.c[i]);
    }
    let (l0, l1) = (p0.next_leaf(70, 3).unwrap(), p1.next_leaf(70, 3).unwrap());
    for (s, r) in [(&l0, &l1), (&l1, &l0)] {
        for e in 0..70 {
            assert_eq!(
                s.table[8 * e + r.choice[e] as usize],
                r.chosen[e],
                "leaf {e}"
            );
            assert!(r.choice[e] < 8 && s.mask[e] < 4);
        }
    }
    let (r0, r1) = (p0.next_rot(70).unwrap(), p1.next_rot(70).unwrap());
    for (s, r) in [(&r0, &r1), (&r1, &r0)] {
        for e in 0..70 {
            let c = r.choice_bit(e) as usize;
            assert_eq!(s.pairs[e][c], r.chosen[e], "random OT {e}");
            assert_ne!(s.pairs[e][1 - c], r.chosen[e], "random OT {e}");
        }
        assert_eq!(r.choice[1] >> 6, 0);
    }
    assert!(p0.is_drained() && p1.is_drained());
    assert!(p0.next_elementwise((4, 4)).is_err());
}
