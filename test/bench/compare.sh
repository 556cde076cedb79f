#!/usr/bin/env bash
# test/bench/compare.sh: outpost against mosquitto under the same load, for
# issue 9 (cost per message and per connection on a small edge box).
#
# For every case of the matrix, in 3 interleaved rounds, it starts a fresh
# broker (mosquitto, then outpost, each on a free loopback port with a fresh
# config and data directory), runs `outpost bench` against it, and stops it.
# The bench tool is given the broker's pid: it samples the broker's CPU
# (its threads' time on CPU, /proc/PID/task/*/schedstat) over the measured phase and its peak
# RSS (VmHWM from /proc/PID/status) at the end. The table shows the median
# of the rounds and outpost / mosquitto ratios; loss is summed over rounds.
#
#   test/bench/compare.sh                 full matrix, default sizes (about 4-6 minutes on 2 cores)
#   test/bench/compare.sh -s 0.25         every message count × 0.25 (quick look)
#   test/bench/compare.sh -r 5 -o DIR     5 rounds, results kept in DIR
#   test/bench/compare.sh -w              measure the working tree, not HEAD
#   test/bench/compare.sh -c "fan-in qos1,connections"   only these cases
#
# Default sizes (-s 1): fan-in 4 publishers × 20000 → 1 subscriber; fan-out
# 1 × 2000 → 50 subscribers (100000 deliveries); 2000 connections; 10000
# retained; backlog 10000; mqttsn 4 × 5000; durable 4 × 5000. Payload 64 B,
# MQTT 3.1.1, window 20 unacknowledged per publisher (64 in "w64").
# Both brokers: max in-flight 20 per client, queues sized to hold a whole
# run (max_queued 200000), nothing else changed from their defaults
# (mosquitto keeps its default set_tcp_nodelay false).
# mqttsn and durable exist only in outpost and run against it alone;
# durable runs `outpost run` with a forward rule and the uplink off, so
# every QoS 1 publish is fsynced into the queue before its PUBACK.
#
# Broker CPU is the sum of the broker's threads' time on CPU (schedstat, in
# ns), so even the connection case (about 0.1 s of broker CPU) is exact; if
# a broker thread exits during a phase it falls back to utime+stime from
# /proc/PID/stat, in 10 ms ticks. What still moves between rounds is the
# machine: take the median, and more rounds (-r 5) for a close call.
#
# Needs: go, apt (to install mosquitto if missing), /usr/bin/python3 (free ports).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
export PATH="$PATH:/usr/sbin:/sbin"

SCALE=1 ROUNDS=3 OUT="" WORKTREE=0 ONLY=""
while getopts "s:r:o:wc:h" opt; do
  case $opt in
    s) SCALE=$OPTARG ;;
    r) ROUNDS=$OPTARG ;;
    o) OUT=$OPTARG ;;
    w) WORKTREE=1 ;;
    c) ONLY=$OPTARG ;;
    *) sed -n '2,30p' "$0"; exit 2 ;;
  esac
done

if ! command -v mosquitto >/dev/null 2>&1; then
  echo "compare.sh: installing mosquitto" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends mosquitto >/dev/null
fi
# 2000 connections need more than the usual 1024 descriptors, in mosquitto too.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

TMP="$(mktemp -d)"
OUT="${OUT:-$TMP}"
mkdir -p "$OUT"
BROKER_PID=""
cleanup() {
  if [ -n "$BROKER_PID" ]; then kill "$BROKER_PID" 2>/dev/null || true; wait "$BROKER_PID" 2>/dev/null || true; fi
  rm -rf "$TMP/src" "$TMP/run"
}
trap cleanup EXIT

# Build outpost from the commit (git archive: exactly what HEAD holds, not
# whatever else is in the working tree), or from the working tree with -w,
# the way systemd/package.sh builds the shipped binaries (static, CGO off,
# no symbol tables): what runs on a board is what is measured. A default
# `go build` on this amd64 machine links libc dynamically and maps 1.4 MiB
# more.
COMMIT="$(git -C "$ROOT" rev-parse --short=12 HEAD)"
build() { CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$COMMIT" -o "$TMP/outpost" ./cmd/outpost; }
if [ "$WORKTREE" = 1 ]; then
  COMMIT="$COMMIT+worktree"
  (cd "$ROOT" && build)
else
  mkdir -p "$TMP/src"
  git -C "$ROOT" archive HEAD | tar -x -C "$TMP/src"
  (cd "$TMP/src" && GOFLAGS=-mod=mod build)
fi
OUTPOST="$TMP/outpost"
echo "compare.sh: outpost $COMMIT, $(mosquitto -h 2>/dev/null | head -1), $(nproc) cores, scale $SCALE, $ROUNDS rounds" >&2

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
free_udp_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
n() { /usr/bin/python3 -c "print(max(1, round($1 * $SCALE)))"; }

# wait_port PORT PID: until the broker accepts connections (or died).
wait_port() {
  for _ in $(seq 1 200); do
    kill -0 "$2" 2>/dev/null || return 1
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  return 1
}

# start_mosquitto PORT LIMITS (sized: queues hold a whole run; default: as shipped)
start_mosquitto() {
  local dir="$TMP/run/mosquitto"; mkdir -p "$dir"
  local limits="max_inflight_messages 20
max_queued_messages 200000"
  [ "$2" = default ] && limits="# default limits: max_inflight_messages 20, max_queued_messages 1000"
  cat >"$dir/mosquitto.conf" <<CONF
listener $1 127.0.0.1
allow_anonymous true
$limits
persistence false
log_dest stderr
log_type error
CONF
  mosquitto -c "$dir/mosquitto.conf" 2>"$dir/log" &
  BROKER_PID=$!
  wait_port "$1" "$BROKER_PID" || { cat "$dir/log" >&2; echo "compare.sh: mosquitto did not start" >&2; exit 1; }
}

# start_outpost PORT SNPORT DURABLE LIMITS
start_outpost() {
  local dir="$TMP/run/outpost"; rm -rf "$dir"; mkdir -p "$dir"
  local sn="mqttsn: {enabled: false}"
  [ "$2" != 0 ] && sn="mqttsn: {enabled: true, listen: \"127.0.0.1:$2\", advertise_interval: -1s}"
  local uplink="uplink: {enabled: false}"
  [ "$3" = 1 ] && uplink='uplink: {enabled: false, forward: [{filter: "bench/#", qos: 1}]}'
  local limits="  max_inflight: 20
  max_queued: 200000"
  [ "$4" = default ] && limits="  # default limits: max_inflight 20, max_queued 10000"
  cat >"$dir/outpost.yaml" <<CONF
data_dir: $dir/data
log: {level: warn}
broker:
  listeners:
    - {address: "127.0.0.1:$1"}
$limits
  sys_interval: 1s
$sn
sensors: []
$uplink
http: {listen: "off"}
CONF
  "$OUTPOST" run -c "$dir/outpost.yaml" >"$dir/log" 2>&1 &
  BROKER_PID=$!
  wait_port "$1" "$BROKER_PID" || { cat "$dir/log" >&2; echo "compare.sh: outpost did not start" >&2; exit 1; }
}

stop_broker() {
  kill "$BROKER_PID" 2>/dev/null || true
  wait "$BROKER_PID" 2>/dev/null || true
  BROKER_PID=""
}

# The matrix: case label | brokers | broker limits | bench arguments.
# "default limits" rows run both brokers with their shipped queue limits
# (outpost max_queued 10000, mosquitto max_queued_messages 1000): they show
# what happens to acknowledged messages when a subscriber's queue fills.
CASES=(
  "fan-in qos0|both|sized|fan-in -q 0 -n $(n 20000)"
  "fan-in qos1|both|sized|fan-in -q 1 -n $(n 20000)"
  "fan-in qos2|both|sized|fan-in -q 2 -n $(n 20000)"
  "fan-in qos2 w64|both|sized|fan-in -q 2 -w 64 -n $(n 20000)"
  "fan-out qos0|both|sized|fan-out -q 0 -n $(n 2000)"
  "fan-out qos1|both|sized|fan-out -q 1 -n $(n 2000)"
  "connections|both|sized|connections -n $(n 2000)"
  "retained qos1|both|sized|retained -q 1 -n $(n 10000)"
  "backlog qos1|both|sized|backlog -q 1 -n $(n 10000)"
  "fan-in qos1 (default limits)|both|default|fan-in -q 1 -n $(n 20000)"
  "fan-in qos2 w64 (default limits)|both|default|fan-in -q 2 -w 64 -n $(n 20000)"
  "mqttsn qos1|outpost|sized|mqttsn -q 1 -n $(n 5000)"
  "durable qos1|outpost|sized|durable -n $(n 5000)"
)

RESULTS="$OUT/results.jsonl"
: >"$RESULTS"
start=$(date +%s)
for round in $(seq 1 "$ROUNDS"); do
  for c in "${CASES[@]}"; do
    IFS='|' read -r label brokers limits args <<<"$c"
    if [ -n "$ONLY" ] && [[ ",$ONLY," != *",$label,"* ]]; then continue; fi
    order="mosquitto outpost"
    [ $((round % 2)) = 0 ] && order="outpost mosquitto"   # interleave: neither always goes first
    [ "$brokers" = outpost ] && order="outpost"
    for b in $order; do
      port=$(free_port)
      snport=0 durable=0
      [[ $label == mqttsn* ]] && snport=$(free_udp_port)
      [[ $label == durable* ]] && durable=1
      case $b in
        mosquitto) start_mosquitto "$port" "$limits" ;;
        outpost) start_outpost "$port" "$snport" "$durable" "$limits" ;;
      esac
      echo "compare.sh: round $round, $label, $b" >&2
      # shellcheck disable=SC2086
      "$OUTPOST" bench $args -p "$port" --sn-port "$snport" --broker "$b" --case "$label" \
        --broker-pid "$BROKER_PID" --round "$round" --commit "$COMMIT" --json >>"$RESULTS" \
        || echo "compare.sh: $label on $b, round $round: bench exited $? (kept in the results)" >&2
      stop_broker
    done
  done
done
echo "compare.sh: $(( $(date +%s) - start )) s; results in $RESULTS" >&2

echo
echo "outpost $COMMIT vs $(mosquitto -h 2>/dev/null | head -1 | sed 's/ is an MQTT.*//'), $(nproc) cores, median of $ROUNDS rounds, scale $SCALE"
echo "(µs = broker CPU, user+sys, per unit; lost = summed over the rounds; tool = outpost bench's own CPU per unit, % of the broker's)"
echo
"$OUTPOST" bench table --reference "$ROOT/test/bench/reference.tsv" "$RESULTS"
