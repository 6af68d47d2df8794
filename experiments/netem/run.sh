#!/usr/bin/env bash
# WAN/LAN emulation for two Dyad parties on one Linux host (needs root, iproute2, tc/netem).
# Not run in CI.
#
#   sudo experiments/netem/run.sh up   [wan|lan]   # namespaces dyad0/dyad1, veth pair, netem profile
#   sudo experiments/netem/run.sh exec 0 CMD...    # run CMD inside dyad0 (10.77.0.1), 1 → dyad1 (10.77.0.2)
#   sudo experiments/netem/run.sh down
#
# Profiles (applied on both ends, so the round trip is twice the one-way delay):
#   wan: 36 ms one-way (72 ms RTT), 9 MB/s (72 Mbit/s) rate limit
#   lan: 0.1 ms one-way (0.2 ms RTT), 1 Gbit/s
# Example (P0 in dyad0, P1 in dyad1; peer listen 10.77.0.1:7100, clients on 10.77.0.x:720x):
#   sudo experiments/netem/run.sh up wan
#   sudo experiments/netem/run.sh exec 0 target/release/party serve --config p0/party.toml &
#   sudo experiments/netem/run.sh exec 1 target/release/party serve --config p1/party.toml &
set -euo pipefail

NS0=dyad0 NS1=dyad1
IP0=10.77.0.1 IP1=10.77.0.2

profile() {
  case "$1" in
    wan) echo "delay 36ms rate 72mbit limit 100000" ;;
    lan) echo "delay 100us rate 1gbit limit 100000" ;;
    *) echo "unknown profile $1 (wan|lan)" >&2; exit 2 ;;
  esac
}

up() {
  local p; p=$(profile "${1:-wan}")
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
  # shellcheck disable=SC2086
  ip netns exec "$NS0" tc qdisc add dev veth-dyad0 root netem $p
  # shellcheck disable=SC2086
  ip netns exec "$NS1" tc qdisc add dev veth-dyad1 root netem $p
  echo "up: $NS0 ($IP0) <-> $NS1 ($IP1), profile ${1:-wan}: $p"
  ip netns exec "$NS0" ping -c 3 -q "$IP1" | tail -1
}

down() {
  ip netns del "$NS0" 2>/dev/null || true
  ip netns del "$NS1" 2>/dev/null || true
}

case "${1:-}" in
  up) up "${2:-wan}" ;;
  down) down ;;
  exec) id=$2; shift 2; ns=$NS0; [ "$id" = 1 ] && ns=$NS1; exec ip netns exec "$ns" "$@" ;;
  *) sed -n '2,17p' "$0"; exit 2 ;;
esac
