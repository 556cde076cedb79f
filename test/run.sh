#!/usr/bin/env bash
# test/run.sh: install what the tests need on a fresh Debian machine, then run
# the whole suite. Safe to run again: it installs only what is missing.
#
#   test/run.sh            everything (what CI runs)
#   QUICK=1 test/run.sh    only go vet and go test -race ./...
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
say() { echo "test/run.sh [$(( $(date +%s) - start ))s]: $*"; }
export PATH="$PATH:/usr/sbin:/sbin"

need=()
command -v mosquitto >/dev/null 2>&1 || need+=(mosquitto)
command -v mosquitto_pub >/dev/null 2>&1 || need+=(mosquitto-clients)
/usr/bin/python3 -c 'import paho.mqtt.client' >/dev/null 2>&1 || need+=(python3-paho-mqtt)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# Debian's mosquitto package starts a system broker on :1883, the port the
# README's `go run ./cmd/outpost` uses; the tests start their own on free ports.
if command -v systemctl >/dev/null 2>&1; then systemctl stop mosquitto >/dev/null 2>&1 || true; fi
pkill -x mosquitto >/dev/null 2>&1 || true

say "go vet ./..."
go vet ./...

say "go test -race ./..."
go test -race -timeout 20m ./...

if [ -n "${QUICK:-}" ]; then exit 0; fi

# 32-bit ARM boxes: the packages that run there pass on GOARCH=386 too.
say "GOARCH=386 go test (32-bit stand-in)"
GOARCH=386 go test -timeout 15m ./brokercore/... ./snbridge/... ./adapters/... ./storeforward/... ./configs/... ./hub/sdnotify/...
# Badger on 32-bit: a million queue entries across close/reopen cycles read
# back intact (the ristretto allocator bug, see storeforward/queue).
say "GOARCH=386 queue proof (1M entries, reopen cycles)"
OUTPOST_QUEUE_32BIT_PROOF=1 GOARCH=386 go test -timeout 30m -run 'TestLargeReopen32' ./storeforward/queue/

# Cross builds for the field: the binary and every test binary compile for
# linux/amd64, linux/arm64 and linux/arm (GOARM=7).
say "cross builds"
xdir=$(mktemp -d)
trap 'rm -rf "$xdir"' EXIT
for target in amd64: arm64: arm:7; do
  arch=${target%%:*}; arm=${target#*:}
  CGO_ENABLED=0 GOOS=linux GOARCH=$arch GOARM=$arm go build -trimpath -ldflags "-s -w" -o "$xdir/outpost-$arch" ./cmd/outpost
  echo "  linux/$arch${arm:+ GOARM=$arm}: outpost $(stat -c %s "$xdir/outpost-$arch") bytes (stripped)"
  # The test binaries of the boards (amd64's ran above).
  if [ "$arch" != amd64 ]; then
    CGO_ENABLED=0 GOOS=linux GOARCH=$arch GOARM=$arm go test -c -o "$xdir/tests-$arch/" ./... >/dev/null
    echo "  linux/$arch${arm:+ GOARM=$arm}: test binaries of every package build"
  fi
done
say "all passed"
