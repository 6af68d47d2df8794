#!/usr/bin/env bash
# WAN/LAN emulation for two Dyad parties on one Linux host: network namespaces dyad0 (P0,
# 10.77.0.1) and dyad1 (P1, 10.77.0.2) joined by a veth pair. Needs root and iproute2.
# Not run in CI.
#
#   sudo experiments/netem/run.sh up   [wan|lan]   # namespaces, veth pair, profile
#   sudo experiments/netem/run.sh peer-addr        # the address P1 (in dyad1) dials to reach P0
#   sudo experiments/netem/run.sh probe [PORT]     # UDP round trip dyad1 → P0 through the profile
#   sudo experiments/netem/run.sh exec 0 CMD...    # run CMD inside dyad0 (1 → dyad1)
#   sudo experiments/netem/run.sh down
#
# Profiles (SecureML §V's WAN; a LAN), applied in both directions:
#   wan: 36 ms one-way (72 ms RTT), 9 MB/s (72 Mbit/s)
#   lan: 0.1 ms one-way (0.2 ms RTT), 1 Gbit/s
#
# Two ways to apply them (DYAD_NETEM_MODE=auto|netem|relay, default auto: netem when the kernel
# has sch_netem, the relay otherwise):
#   netem  `tc netem delay … rate …` on both veth ends; P1 dials P0 at 10.77.0.1.
#   relay  the rate by `tbf` on both veth ends, the delay by `delay-relay` (experiments::relay),
#          a userspace relay in dyad1 listening on 10.77.1.1:PORT (UDP and TCP) for each PORT
#          of DYAD_RELAY_PORTS (default "7100 7300": P0's peer port, the probe's echo) and
#          forwarding to 10.77.0.1:PORT. P1 must dial P0 at 10.77.1.1 (`peer-addr`). Only the
#          P0↔P1 peer link (and the probe) get the delay; client connections to P1 cross the veth
#          with its rate only. The lan profile runs the relay with no added delay (its own hop,
#          tens of microseconds, stands in for the 0.1 ms). Caveats: millisecond timer ticks,
#          scheduling jitter on a loaded host, TCP split at the relay; see experiments/src/relay.rs.
#          Build it first: cargo build --release -p experiments --bin delay-relay
#          (DYAD_RELAY_BIN overrides the path).
#
# Example (P0 in dyad0 with peer listen 10.77.0.1:7100, P1 in dyad1):
#   sudo experiments/netem/run.sh up wan
#   sudo experiments/netem/run.sh exec 0 target/release/party serve --config p0/party.toml &
#   sudo experiments/netem/run.sh exec 1 target/release/party serve --config p1/party.toml &
# experiments/netem/wan-logreg.sh runs a whole LAN-vs-WAN comparison in one command.
set -euo pipefail

NS0=dyad0 NS1=dyad1
IP0=10.77.0.1 IP1=10.77.0.2
VIA=10.77.1.1 # P0 as dyad1 reaches it through the relay
STATE=/run/dyad-netem
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
RELAY_BIN=${DYAD_RELAY_BIN:-$ROOT/target/release/delay-relay}
RELAY_PORTS=${DYAD_RELAY_PORTS:-7100 7300}

netem_args() {
  case "$1" in
    wan) echo "delay 36ms rate 72mbit limit 100000" ;;
    lan) echo "delay 100us rate 1gbit limit 100000" ;;
    *) echo "unknown profile $1 (wan|lan)" >&2; exit 2 ;;
  esac
}

# tbf: the rate, a burst of a few packets' worth above rate/HZ, a queue of at most 50 ms.
tbf_args() {
  case "$1" in
    wan) echo "rate 72mbit burst 32kb latency 50ms" ;;
    lan) echo "rate 1gbit burst 256kb latency 50ms" ;;
    *) echo "unknown profile $1 (wan|lan)" >&2; exit 2 ;;
  esac
}

relay_delay_ms() {
  case "$1" in
    wan) echo 36 ;;
    lan) echo 0 ;;
  esac
}

has_netem() {
  # A throwaway namespace: adding the qdisc is the only reliable test (modprobe may be absent).
  local ns=dyad-netem-probe ok=1
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  if ip netns exec "$ns" tc qdisc add dev lo root netem delay 1ms 2>/dev/null; then ok=0; fi
  ip netns del "$ns"
  return $ok
}

up() {
  local profile=${1:-wan} mode=${DYAD_NETEM_MODE:-auto}
  netem_args "$profile" >/dev/null
  if [ "$mode" = auto ]; then
    if has_netem; then mode=netem; else mode=relay; fi
  fi
  if [ "$mode" = relay ] && [ ! -x "$RELAY_BIN" ]; then
    echo "no $RELAY_BIN: cargo build --release -p experiments --bin delay-relay" >&2
    exit 1
  fi
  ip netns add "$NS0"
  ip netns add "$NS1"
  ip link add veth-dyad0 type veth peer name veth-dyad1
  ip link set veth-dyad0 netns "$NS0"
  ip link set veth-dyad1 netns "$NS1"
  ip -n "$NS0" addr add "$IP0/24" dev veth-dyad0
  ip -n "$NS1" addr add "$IP1/24" dev veth-dyad1
  for ns in "$NS0" "$NS1"; do
    ip -n "$ns" link set lo up
  done
  ip -n "$NS0" link set veth-dyad0 up
  ip -n "$NS1" link set veth-dyad1 up
  mkdir -p "$STATE"
  echo "$mode" >"$STATE/mode"
  echo "$profile" >"$STATE/profile"
  local q desc
  if [ "$mode" = netem ]; then
    q="netem $(netem_args "$profile")"
    desc=$q
    echo "$IP0" >"$STATE/peer-addr"
  else
    q="tbf $(tbf_args "$profile")"
    ip -n "$NS1" addr add "$VIA/32" dev lo
    echo "$VIA" >"$STATE/peer-addr"
    local d; d=$(relay_delay_ms "$profile")
    for port in $RELAY_PORTS; do
      ip netns exec "$NS1" "$RELAY_BIN" relay --listen "$VIA:$port" --to "$IP0:$port" \
        --delay-ms "$d" >"$STATE/relay-$port.log" 2>&1 &
      echo $! >>"$STATE/relay.pids"
    done
    desc="$q; delay-relay $d ms each way on ports $RELAY_PORTS"
  fi
  # shellcheck disable=SC2086
  ip netns exec "$NS0" tc qdisc add dev veth-dyad0 root $q
  # shellcheck disable=SC2086
  ip netns exec "$NS1" tc qdisc add dev veth-dyad1 root $q
  echo "up: $NS0 ($IP0) <-> $NS1 ($IP1), profile $profile, mode $mode: $desc"
  echo "P1 reaches P0 at $(cat "$STATE/peer-addr")"
}

peer_addr() {
  cat "$STATE/peer-addr"
}

# Round trip dyad1 → P0 (through the relay in relay mode) with delay-relay's UDP probe.
probe() {
  local port=${1:-7300} pid
  ip netns exec "$NS0" "$RELAY_BIN" echo --listen "$IP0:$port" >/dev/null &
  pid=$!
  sleep 0.3
  ip netns exec "$NS1" "$RELAY_BIN" ping --to "$(peer_addr):$port" --count "${DYAD_PROBES:-20}"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
}

down() {
  if [ -f "$STATE/relay.pids" ]; then
    while read -r pid; do kill "$pid" 2>/dev/null || true; done <"$STATE/relay.pids"
  fi
  rm -rf "$STATE"
  ip netns del "$NS0" 2>/dev/null || true
  ip netns del "$NS1" 2>/dev/null || true
}

case "${1:-}" in
  up) up "${2:-wan}" ;;
  down) down ;;
  peer-addr) peer_addr ;;
  probe) probe "${2:-7300}" ;;
  exec) id=$2; shift 2; ns=$NS0; [ "$id" = 1 ] && ns=$NS1; exec ip netns exec "$ns" "$@" ;;
  *) sed -n '2,35p' "$0"; exit 2 ;;
esac
