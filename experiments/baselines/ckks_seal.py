#!/usr/bin/env python3
"""SEAL baseline for the `ckks_ops` criterion bench (crate `ckks`), through TenSEAL's `sealapi`.

Times the same operations as protocols/ckks/benches/ckks_ops.rs on Microsoft SEAL (TenSEAL
bundles SEAL 4.x; every SEAL operation is single-threaded): encode, public-key encrypt,
decrypt+decode, add, plaintext product, ciphertext product + relinearization, rescale, one
rotation, 16 rotations (SEAL has no hoisting: 16 separate rotations) and generation of one
Galois key.

Parameters mirror the Rust presets as far as SEAL allows: N = 2^14 with a 50-bit first prime and
seven 40-bit primes, N = 2^15 with seventeen 40-bit primes, scale 2^40. SEAL's key switching
uses a single special prime (here 50 bits) and one digit per prime (dnum = L + 1), where the Rust
presets use two/three 50-bit special primes and dnum 4/6; this is a structural difference of the
libraries, so compare per-operation latencies, not noise.

What is measured matches the Rust bench call for call: every operation writes into a freshly
constructed `seal.Ciphertext()` / `seal.Plaintext()` (its buffer comes from SEAL's memory pool)
that goes out of scope inside the timed region, as the Rust results are new ciphertexts taken
from the `ckks` buffer pool and dropped inside criterion's loop. `add` and `mul_relin` combine two
distinct ciphertexts (`ct`, `ct2`), so neither side takes a squaring shortcut; `rescale` acts on a
relinearized product; `rotate_plain_16` drops each of its 16 results at once. Python call overhead
(about a microsecond per call) is included on the SEAL side.

Not part of CI (needs `pip install tenseal`). Usage:
    python3 experiments/baselines/ckks_seal.py [--reps 10] [--batch-seconds 0.2] [--log-n 14 15]
Prints one JSON object per (preset, operation) with the median latency in milliseconds: the
median over `reps` samples of the mean per call in a batch of about `batch-seconds` (criterion
measures the same way: 10 samples of about 0.2 s for the Rust bench's 2 s measurement time).
"""

import argparse
import json
import statistics
import time

import tenseal.sealapi as seal


def median_ms(fn, reps, batch_seconds):
    """Median over `reps` samples of the mean time per call, each sample a batch of calls lasting
    about `batch_seconds` (criterion's method with the Rust bench's 10 samples of ~0.2 s: on a
    loaded machine a batch includes the same share of preemption on both sides, where timing
    single short calls would let them dodge it)."""
    fn()  # warm-up
    t0 = time.perf_counter()
    fn()
    one = time.perf_counter() - t0
    calls = max(1, round(batch_seconds / max(one, 1e-9)))
    samples = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        samples.append((time.perf_counter() - t0) * 1e3 / calls)
    return statistics.median(samples)


def bench(log_n, levels, reps, batch_seconds):
    n = 1 << log_n
    parms = seal.EncryptionParameters(seal.SCHEME_TYPE.CKKS)
    parms.set_poly_modulus_degree(n)
    bits = [50] + [40] * levels + [50]
    parms.set_coeff_modulus(seal.CoeffModulus.Create(n, bits))
    ctx = seal.SEALContext(parms, True, seal.SEC_LEVEL_TYPE.TC128)
    if not ctx.parameters_set():
        raise SystemExit(f"SEAL rejected the parameters: {ctx.parameters_error_message()}")
    scale = 2.0 ** 40

    keygen = seal.KeyGenerator(ctx)
    sk = keygen.secret_key()
    pk = seal.PublicKey()
    keygen.create_public_key(pk)
    rlk = seal.RelinKeys()
    keygen.create_relin_keys(rlk)
    steps = list(range(1, 17))
    # This binding takes Galois elements; SEAL rotates left by `step` with 3^step mod 2N.
    elts = [pow(3, s, 2 * n) for s in steps]
    gk = seal.GaloisKeys()
    keygen.create_galois_keys(elts, gk)

    encoder = seal.CKKSEncoder(ctx)
    encryptor = seal.Encryptor(ctx, pk)
    decryptor = seal.Decryptor(ctx, sk)
    ev = seal.Evaluator(ctx)

    x = [((i * 37) % 1000) / 1000.0 - 0.5 for i in range(encoder.slot_count())]
    pt = seal.Plaintext()
    encoder.encode(x, scale, pt)
    ct = seal.Ciphertext()
    encryptor.encrypt(pt, ct)
    ct2 = seal.Ciphertext()
    encryptor.encrypt(pt, ct2)
    prod = seal.Ciphertext()
    ev.multiply(ct, ct2, prod)
    ev.relinearize_inplace(prod, rlk)

    def encode():
        p = seal.Plaintext()
        encoder.encode(x, scale, p)

    def encrypt():
        c = seal.Ciphertext()
        encryptor.encrypt(pt, c)

    def decrypt_decode():
        p = seal.Plaintext()
        decryptor.decrypt(ct, p)
        encoder.decode_double(p)

    def add():
        c = seal.Ciphertext()
        ev.add(ct, ct2, c)

    def mul_plain():
        c = seal.Ciphertext()
        ev.multiply_plain(ct, pt, c)

    def mul_relin():
        c = seal.Ciphertext()
        ev.multiply(ct, ct2, c)
        ev.relinearize_inplace(c, rlk)

    def rescale():
        c = seal.Ciphertext()
        ev.rescale_to_next(prod, c)

    def rotate_1():
        c = seal.Ciphertext()
        ev.rotate_vector(ct, 1, gk, c)

    def rotate_16():
        for s in steps:
            c = seal.Ciphertext()
            ev.rotate_vector(ct, s, gk, c)

    def keygen_galois_key():
        g = seal.GaloisKeys()
        keygen.create_galois_keys([3], g)

    name = f"SEAL_N{log_n}_L{levels}_S40"
    ops = [
        ("encode", encode),
        ("encrypt_pk", encrypt),
        ("decrypt_decode", decrypt_decode),
        ("add", add),
        ("mul_plain", mul_plain),
        ("mul_relin", mul_relin),
        ("rescale", rescale),
        ("rotate_1", rotate_1),
        ("rotate_plain_16", rotate_16),
        ("keygen_galois_key", keygen_galois_key),
    ]
    for op, fn in ops:
        ms = median_ms(fn, reps, batch_seconds)
        print(json.dumps({"preset": name, "op": op, "median_ms": round(ms, 3)}), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--batch-seconds", type=float, default=0.2)
    ap.add_argument("--log-n", type=int, nargs="+", default=[14, 15])
    args = ap.parse_args()
    levels = {14: 7, 15: 17}
    for log_n in args.log_n:
        if log_n not in levels:
            raise SystemExit(f"--log-n {log_n}: only 14 and 15 are defined")
        bench(log_n, levels[log_n], args.reps, args.batch_seconds)


if __name__ == "__main__":
    main()
