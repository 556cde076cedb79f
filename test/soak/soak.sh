#!/usr/bin/env bash
# test/soak/soak.sh: a long mixed run of the real hub against a real cloud
# broker, with the link and the hub failing on a schedule, that checks the
# store-and-forward guarantee end to end: every message the hub
# acknowledged reaches the cloud, in order.
#
#   test/soak/soak.sh            7 minutes (about 23,000 messages)
#   test/soak/soak.sh -d 3600    an hour
#   test/soak/soak.sh -b BIN     an outpost binary instead of building one
#
# It starts a mosquitto with persistence as the cloud, the hub (broker,
# MQTT-SN gateway, a simulated sensor every second, an uplink forwarding
# soak/# and sensors/# with QoS 1) and a persistent QoS 1 subscriber on the
# cloud, then two paho publishers sending numbered QoS 1 messages at 30/s
# each, re-sending what was not acknowledged. Every 40 s the cloud is
# stopped for 15 s; halfway the hub gets SIGTERM and is restarted; at
# three quarters it is killed with SIGKILL and restarted. At the end it
# waits up to 2 minutes for the queue to drain and compares what the
# publishers had acknowledged with what the cloud subscriber received:
# nothing missing and no reordering (duplicates are QoS 1 re-sends after a
# link drop, counted). Exit status 0 on PASS, 1 on FAIL; the working
# directory (logs, databases) is kept and printed.
#
# Needs: go, mosquitto, /usr/bin/python3 with paho-mqtt (test/run.sh
# installs them).
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
HERE="$ROOT/test/soak"
DUR=420 BIN=""
while getopts "d:b:h" opt; do
  case $opt in
    d) DUR=$OPTARG ;;
    b) BIN=$OPTARG ;;
    *) sed -n '2,26p' "$0"; exit 2 ;;
  esac
done
export PATH="$PATH:/usr/sbin:/sbin"
D="$(mktemp -d /tmp/outpost-soak.XXXXXX)"
echo "soak: working directory $D, $DUR s"
if [ -z "$BIN" ]; then
  BIN="$D/outpost"
  (cd "$ROOT" && CGO_ENABLED=0 go build -o "$BIN" ./cmd/outpost) || exit 1
fi
PY=/usr/bin/python3
fp() { $PY -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
C=$(fp) H=$(fp)
S=$($PY -c 'import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
MQ="" HUB="" SUB="" PA="" PB=""
cleanup() { kill $PA $PB $SUB $HUB 2>/dev/null; [ -n "$MQ" ] && kill -TERM $MQ 2>/dev/null; wait 2>/dev/null; }
trap cleanup EXIT

mkdir -p "$D/mq"
# user root: as root, mosquitto would otherwise switch to its own user and
# could not write here.
cat >"$D/mq.conf" <<CONF
$( [ "$(id -u)" = 0 ] && echo "user root" )
listener $C 127.0.0.1
allow_anonymous true
persistence true
persistence_location $D/mq/
max_queued_messages 1000000
log_dest file $D/mq.log
CONF
startmq() { mosquitto -c "$D/mq.conf" 2>>"$D/mq.stderr" & MQ=$!; }
cat >"$D/outpost.yaml" <<CONF
data_dir: $D/data
log: {level: info}
broker:
  listeners:
    - {address: "127.0.0.1:$H"}
mqttsn: {enabled: true, listen: "127.0.0.1:$S", advertise_interval: -1s}
sensors:
  - {name: water, driver: ds18b20, bus: {type: onewire, name: SIM-W1}, topic: sensors/water, interval: 1s, simulate: {temperature: 11.5}}
uplink:
  enabled: true
  url: "mqtt://127.0.0.1:$C"
  protocol_version: 5
  client_id: soak-hub
  forward:
    - {filter: "soak/#", qos: 1, remote_prefix: "site/"}
    - {filter: "sensors/#", qos: 1, remote_prefix: "site/"}
http: {listen: "off"}
CONF
starthub() { "$BIN" run -c "$D/outpost.yaml" >>"$D/hub.log" 2>&1 & HUB=$!; }
startmq
sleep 0.5
starthub
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$H") 2>/dev/null && break; sleep 0.1; done
$PY "$HERE/cloudsub.py" "$C" 'site/#' "$D/cloud.log" & SUB=$!
sleep 1
$PY "$HERE/pub.py" "$H" soak/a 30 "$DUR" "$D/acked.a" & PA=$!
$PY "$HERE/pub.py" "$H" soak/b 30 "$DUR" "$D/acked.b" & PB=$!
t0=$(date +%s)
el() { echo $(( $(date +%s) - t0 )); }
next_mq=40 hub_term=$((DUR / 2)) hub_kill=$((DUR * 3 / 4)) did_term=0 did_kill=0
while [ "$(el)" -lt "$DUR" ]; do
  sleep 1
  if [ "$(el)" -ge $next_mq ]; then
    echo "soak: [$(el) s] cloud down for 15 s"; kill -TERM $MQ; wait $MQ 2>/dev/null; sleep 15; startmq
    next_mq=$(( $(el) + 40 ))
  fi
  if [ $did_term = 0 ] && [ "$(el)" -ge $hub_term ]; then
    echo "soak: [$(el) s] hub SIGTERM, restart"; kill -TERM $HUB; wait $HUB; sleep 3; starthub; did_term=1
  fi
  if [ $did_kill = 0 ] && [ "$(el)" -ge $hub_kill ]; then
    echo "soak: [$(el) s] hub SIGKILL, restart"; kill -9 $HUB; wait $HUB 2>/dev/null; sleep 3; starthub; did_kill=1
  fi
done
wait $PA $PB
PA="" PB=""
echo "soak: [$(el) s] publishers done ($(wc -l <"$D/acked.a") + $(wc -l <"$D/acked.b") acknowledged); waiting for the queue to drain"
uniq_at() { awk -v t="$1" '$1==t {print $2}' "$D/cloud.log" | sort -un | wc -l; }
for _ in $(seq 120); do
  [ "$(uniq_at site/soak/a)" -ge "$(wc -l <"$D/acked.a")" ] && [ "$(uniq_at site/soak/b)" -ge "$(wc -l <"$D/acked.b")" ] && break
  sleep 1
done
errors=$(grep -c "level=ERROR" "$D/hub.log")
$PY - "$D" "$errors" <<'PY'
import sys
d, errors = sys.argv[1], int(sys.argv[2])
lines = [l.split() for l in open(d + "/cloud.log")]
ok = True
for t in "ab":
    acked = [int(x) for x in open(d + "/acked." + t)]
    got = [int(l[1]) for l in lines if l[0] == "site/soak/" + t]
    first, seen, dups = [], set(), 0
    for g in got:
        if g in seen:
            dups += 1
            continue
        seen.add(g)
        first.append(g)
    missing = [a for a in acked if a not in seen]
    inversions = sum(1 for i in range(1, len(first)) if first[i] < first[i - 1])
    print(f"soak: soak/{t}: {len(acked)} acknowledged, {len(seen)} at the cloud ({dups} duplicates), "
          f"{len(missing)} missing {missing[:10]}, {inversions} out of order")
    ok = ok and not missing and inversions == 0
print("soak: sensor readings at the cloud:", sum(1 for l in lines if l[0].startswith("site/sensors/")))
print("soak: hub log ERROR lines:", errors)
print("soak:", "PASS" if ok else "FAIL")
sys.exit(0 if ok else 1)
PY
