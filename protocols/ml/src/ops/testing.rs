//! Test harness of the building blocks: one body run on the plaintext twin, planned on shapes
//! and run on dealer-triple shares in process (exact truncation), the shared outputs
//! reconstructed for comparison with the twin's.

/// `on_shares!(frac_bits, inputs, |b, xs| { body returning Vec<B::Tensor> })` evaluates to
/// `(twin, secure)`, both `Vec<Array2<f64>>`; asserts the shared run consumed exactly the plan.
macro_rules! on_shares {
    ($frac:expr, $inputs:expr, |$b:ident, $xs:ident| $body:block) => {{
        use mpc::triples::TripleSource;
        let inputs: Vec<ndarray::Array2<f64>> = $inputs;
        let fp = mpc::FixedPoint::new(mpc::FracBits::new($frac).unwrap());
        let mode = mpc::trunc::Truncation::Exact;
        let twin: Vec<ndarray::Array2<f64>> = {
            let mut plain = $crate::backend::Plain::new();
            let $b = &mut plain;
            let $xs = inputs.clone();
            $body
        };
        let reqs = {
            let mut plan = $crate::backend::Plan::with_truncation(mode);
            let $b = &mut plan;
            let $xs: Vec<$crate::backend::PlanTensor> = inputs
                .iter()
                .map(|m| $crate::backend::PlanTensor(m.dim()))
                .collect();
            let _ = $body;
            plan.into_requests()
        };
        let (mut d0, mut d1, _h) = mpc::triples::dealer::spawn_in_process().await.unwrap();
        let (pre0, pre1) = tokio::join!(d0.generate(&reqs), d1.generate(&reqs));
        let (c0, c1) = mpc::net::mem_pair();
        let mut b0 = $crate::backend::Shared::new(c0, mpc::Role::P0, fp, pre0.unwrap())
            .with_truncation(mode);
        let mut b1 = $crate::backend::Shared::new(c1, mpc::Role::P1, fp, pre1.unwrap())
            .with_truncation(mode);
        let mut rng = <rand_chacha::ChaCha20Rng as rand::SeedableRng>::seed_from_u64(5);
        let (mut s0, mut s1) = (Vec::new(), Vec::new());
        for m in &inputs {
            let enc = fp.encode_matrix(&m.view()).unwrap();
            let [a, c] = mpc::share::share(&enc.view(), &mut rng);
            s0.push(a);
            s1.push(c);
        }
        let (o0, o1) = tokio::join!(
            async {
                let $b = &mut b0;
                let $xs = s0;
                $body
            },
            async {
                let $b = &mut b1;
                let $xs = s1;
                $body
            }
        );
        assert!(b0.preprocessing_drained() && b1.preprocessing_drained());
        let secure: Vec<ndarray::Array2<f64>> = o0
            .iter()
            .zip(&o1)
            .map(|(a, c)| fp.decode_matrix(&mpc::share::reconstruct(a, c).view()))
            .collect();
        (twin, secure)
    }};
}

pub(crate) use on_shares;
