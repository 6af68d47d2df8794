#!/usr/bin/env bash
# LAN vs WAN, in one command: the remote logistic-regression job of a config (default
# experiments/configs/remote-logreg.toml: SecureML logistic regression on breast cancer, OT
# triples) on two `party serve` processes in the namespaces of experiments/netem/run.sh (P0 in
# dyad0, P1 in dyad1), once per profile. Needs root; not run in CI.
#
#   sudo experiments/netem/wan-logreg.sh [CONFIG]
#
# Environment: PROFILES (default "lan wan"), TRANSPORT (quic | tls-tcp, default quic),
# OUT (default results/wan-logreg/<UTC time>), NO_BUILD=1 to skip `cargo build`,
# DYAD_NETEM_MODE (auto | netem | relay, see run.sh), CPU_QUOTA_PCT=N to run both parties in a
# cgroup (v1 cpu controller) limited to N % of one core together, which emulates a loaded host
# without loading it.
#
# Per profile it records the UDP round trip dyad1 → P0 along the peer link's path (probe.txt),
# the host load, each party's CPU seconds during the job, and the experiment's results.json
# (job time at the client; each party's offline/online time, bytes and rounds); a summary table
# goes to OUT/summary.md. The data owner's client runs in dyad0 next to P0.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
CONFIG=$(realpath "${1:-experiments/configs/remote-logreg.toml}")
PROFILES=${PROFILES:-lan wan}
TRANSPORT=${TRANSPORT:-quic}
OUT=$(realpath -m "${OUT:-results/wan-logreg/$(date -u +%Y%m%dT%H%M%SZ)}")
BIN=$ROOT/target/release
NETEM=$ROOT/experiments/netem/run.sh
IP0=10.77.0.1 IP1=10.77.0.2

if [ -z "${NO_BUILD:-}" ]; then
  nice -n 10 cargo build --release -p party --bin party --bin share-upload
  nice -n 10 cargo build --release -p experiments --bin experiment --bin delay-relay
fi
mkdir -p "$OUT"
ip netns list | grep -q '^dyad0' && "$NETEM" down

PIDS=()
CG=/sys/fs/cgroup/cpu/dyad-wan-$$
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  "$NETEM" down
  sleep 0.5
  rmdir "$CG" 2>/dev/null || true
}
trap cleanup EXIT

cpu_s() { # user + system seconds of a process
  awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"
}

wait_for() { # FILE TEXT SECONDS
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "no '$2' in $1 after $3 s" >&2
  cat "$1" >&2
  return 1
}

train=$("$BIN/experiment" export "$CONFIG" --out "$OUT/owner-data" | sed -n 1p)
echo "| profile | mode | probe RTT median (min–max) | job (client) | offline P0 | online P0 | online P1 | online bytes P0→P1 | rounds P0 | CPU P0 / P1 during the job | load (1 min) |" >"$OUT/summary.md"
echo "|---|---|---|---|---|---|---|---|---|---|---|" >>"$OUT/summary.md"

for profile in $PROFILES; do
  d=$OUT/$profile
  mkdir -p "$d"
  "$NETEM" up "$profile" | tee "$d/netem.txt"
  mode=$(cat /run/dyad-netem/mode)
  via=$("$NETEM" peer-addr)
  for id in 0 1; do "$BIN/party" init --id "$id" --dir "$d/p$id" >/dev/null; done
  cp "$d/p1/cert.pem" "$d/p0/peer-cert.pem"
  cp "$d/p0/cert.pem" "$d/p1/peer-cert.pem"
  fp=$("$BIN/party" client-init --dir "$d/me" --p0 "$IP0:7200" --p0-cert "$d/p0/cert.pem" \
    --p1 "$IP1:7201" --p1-cert "$d/p1/cert.pem")
  for id in 0 1; do
    if [ "$id" = 0 ]; then peer="listen = \"$IP0:7100\""; caddr=$IP0:7200
    else peer="address = \"$via:7100\""; caddr=$IP1:7201; fi
    cat >"$d/p$id/party.toml" <<EOF
role = $id
identity_dir = "."
data_dir = "data"
[peer]
$peer
certificate = "peer-cert.pem"
transport = "$TRANSPORT"
timeout_s = 300
[clients]
listen = "$caddr"
[[clients.allow]]
name = "owner"
fingerprint = "$fp"
[limits]
max_upload_bytes = 1073741824
max_concurrent_jobs = 2
EOF
  done
  pids=()
  for id in 0 1; do
    RUST_LOG=info "$NETEM" exec "$id" "$BIN/party" serve --config "$d/p$id/party.toml" \
      >"$d/p$id.out" 2>"$d/p$id.log" &
    pids+=("$!")
    PIDS+=("$!")
  done
  wait_for "$d/p0.log" "peer connected from" 60
  if [ -n "${CPU_QUOTA_PCT:-}" ]; then
    mkdir -p "$CG"
    echo 100000 >"$CG/cpu.cfs_period_us"
    echo $((CPU_QUOTA_PCT * 1000)) >"$CG/cpu.cfs_quota_us"
    for p in "${pids[@]}"; do echo "$p" >"$CG/cgroup.procs"; done
    echo "parties limited to $CPU_QUOTA_PCT % of one core" | tee "$d/quota.txt"
  fi
  "$NETEM" probe 7300 | tee "$d/probe.txt"
  "$NETEM" exec 0 "$BIN/share-upload" --parties "$IP0:7200,$IP1:7201" \
    --p0-cert "$d/me/p0-cert.pem" --p1-cert "$d/me/p1-cert.pem" --cert-dir "$d/me" \
    --name cancer --quiet "$train" >"$d/upload.txt"
  c0=$(cpu_s "${pids[0]}") c1=$(cpu_s "${pids[1]}")
  load0=$(cut -d' ' -f1 /proc/loadavg)
  "$NETEM" exec 0 "$BIN/experiment" run --remote "$d/me/p0.toml,$d/me/p1.toml" \
    --out "$d/results" "$CONFIG" | tee "$d/experiment.txt"
  load1=$(cut -d' ' -f1 /proc/loadavg)
  c0=$(awk -v a="$c0" -v b="$(cpu_s "${pids[0]}")" 'BEGIN { printf "%.1f", b - a }')
  c1=$(awk -v a="$c1" -v b="$(cpu_s "${pids[1]}")" 'BEGIN { printf "%.1f", b - a }')
  json=$(find "$d/results" -name results.json | head -1)
  rtt=$(sed -n 's/.*min\/median\/max = \([0-9.]*\)\/\([0-9.]*\)\/\([0-9.]*\) ms/\2 ms (\1–\3)/p' "$d/probe.txt")
  python3 - "$json" "$profile" "$mode" "$rtt" "$c0" "$c1" "$load0–$load1" >>"$OUT/summary.md" <<'PY'
import json, sys
path, profile, mode, rtt, c0, c1, load = sys.argv[1:]
m = json.load(open(path))["metrics"]
g = lambda k: m.get("secure." + k, float("nan"))
print(f"| {profile} | {mode} | {rtt} | {g('job_s'):.2f} s | {g('offline_s'):.2f} s | "
      f"{g('online_s'):.2f} s | {g('online_p1_s'):.2f} s | {g('bytes_sent_p0_bytes') / 1e6:.2f} MB | "
      f"{g('rounds_p0_count'):.0f} | {c0} / {c1} s | {load} |")
PY
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  "$NETEM" down
done
echo
cat "$OUT/summary.md"
echo "(transport $TRANSPORT; config $CONFIG; everything under $OUT)"
