#!/usr/bin/env bash
# Runs every cargo-fuzz target of party/fuzz (one per decoder, see party/src/fuzzing.rs) for a
# bounded time: coverage-guided libFuzzer, nightly toolchain, `cargo install cargo-fuzz`.
# Not part of CI (the property tests in party/tests/decoders.rs are).
#
#   party/fuzz/run.sh [SECONDS_PER_TARGET (default 60)] [TARGET ...]
#
# Prints one line per target (executions, corpus entries, crash/oom/timeout artifacts) and exits
# non-zero when a target left an artifact in artifacts/<target>/. The corpora in corpus/<target>
# persist between runs; logs go to logs/<target>.log.
# The targets are built without a sanitizer (the decoders are safe Rust; what the fuzzer looks
# for is a panic, an abort, unbounded allocation or a hang) and with debug assertions, so
# integer overflow panics too; FUZZ_FLAGS overrides (e.g. FUZZ_FLAGS="-s address").
set -euo pipefail
cd "$(dirname "$0")"
FUZZ_FLAGS="${FUZZ_FLAGS:--s none -a}"
secs="${1:-60}"
[ $# -gt 0 ] && shift
if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list)
fi
# Seed corpora: valid encodings of every message (party::fuzzing::seeds).
(cd ../.. && cargo run -q -p party --release --example fuzz_stable -- write-seeds party/fuzz/corpus)
cargo +nightly fuzz build $FUZZ_FLAGS >/dev/null
mkdir -p logs
printf '%-16s %12s %10s %8s %8s\n' target executions exec/s corpus crashes
bad=0
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    set +e
    # The HE decoders' valid inputs are up to ~0.5 MB (an RLWE query at N = 16384): a 64 KiB
    # limit would only exercise their length checks.
    case "$t" in
        he_keys | rlwe_messages) max_len=1048576 ;;
        *) max_len=65536 ;;
    esac
    cargo +nightly fuzz run $FUZZ_FLAGS "$t" "corpus/$t" -- \
        -max_total_time="$secs" -print_final_stats=1 -rss_limit_mb=2048 -max_len="$max_len" \
        >"logs/$t.log" 2>&1
    set -e
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "logs/$t.log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "logs/$t.log" | tail -1)
    crashes=$(find "artifacts/$t" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'oom-*' -o -name 'timeout-*' \) 2>/dev/null | wc -l)
    corpus=$(find "corpus/$t" -type f | wc -l)
    printf '%-16s %12s %10s %8s %8s\n' "$t" "${execs:-?}" "${rate:-?}" "$corpus" "$crashes"
    [ "$crashes" -eq 0 ] || bad=1
done
exit "$bad"
