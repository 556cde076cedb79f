#!/usr/bin/env bash
# test/run.sh: install what the tests need on a fresh Debian machine, then run
# the whole suite. Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v mosquitto_pub >/dev/null 2>&1 || need+=(mosquitto-clients)
/usr/bin/python3 -c 'import paho.mqtt.client' >/dev/null 2>&1 || need+=(python3-paho-mqtt)
if [ ${#need[@]} -gt 0 ]; then
  echo "test/run.sh: installing ${need[*]}"
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# The Debian package starts a system mosquitto on :1883; tests use their own
# ports, but stop it so the README's default broker port is free.
if command -v systemctl >/dev/null 2>&1; then systemctl stop mosquitto >/dev/null 2>&1 || true; fi
pkill -x mosquitto >/dev/null 2>&1 || true

export PATH="$PATH:/usr/sbin"
echo "test/run.sh: go vet"
go vet ./...
echo "test/run.sh: go test -race ./..."
go test -race -timeout 20m ./...
echo "test/run.sh: GOARCH=386 go test (32-bit ARM stand-in)"
GOARCH=386 go test -timeout 15m ./brokercore/... 
