#!/usr/bin/env bash
# systemd/package.sh [arch...]: build static outpost binaries and .deb
# packages into dist/. Architectures (Debian names): amd64 arm64 armhf
# (armhf = GOARM=7); default all three.
#
#   systemd/package.sh             # dist/outpost_<version>_{amd64,arm64,armhf}.deb
#   systemd/package.sh arm64       # one architecture
#   DIST=/tmp/out systemd/package.sh   # somewhere other than dist/
#
# Needs Go and network access to the module proxy the first time (nfpm
# v2.45.2 is built with `go install` into a temporary directory, never
# added to go.mod; the Go build cache makes later runs quick). Set NFPM to
# an nfpm binary to use that instead.
set -euo pipefail
cd "$(dirname "$0")/.."

archs=("$@")
if [ ${#archs[@]} -eq 0 ]; then archs=(amd64 arm64 armhf); fi

# The version stamped into the binary (main.version) is `git describe`; the
# Debian version must start with a digit and sort upwards:
#   v1.2.0           -> 1.2.0
#   v1.2.0-5-gabc123 -> 1.2.0+5.gabc123
#   abc123 (no tag)  -> 0.0.0~git<commits>.gabc123   (sorts before any 0.0.0 release)
# and ".dirty" is appended for a tree with uncommitted changes.
version=$(git describe --tags --always --dirty 2>/dev/null || echo dev)
dirty=""
v=$version
if [[ $v == *-dirty ]]; then dirty=.dirty; v=${v%-dirty}; fi
# A bare hash can start with a digit too, so ask git whether a tag exists.
if git describe --tags --abbrev=0 >/dev/null 2>&1 && [[ $v =~ ^v?([0-9][0-9A-Za-z.~+]*)-([0-9]+)-g([0-9a-f]+)$ ]]; then
	debversion="${BASH_REMATCH[1]}+${BASH_REMATCH[2]}.g${BASH_REMATCH[3]}${dirty}"
elif git describe --tags --abbrev=0 >/dev/null 2>&1 && [[ $v =~ ^v?([0-9][0-9A-Za-z.~+]*)$ ]]; then
	debversion="${BASH_REMATCH[1]}${dirty:++dirty}"
else
	commits=$(git rev-list --count HEAD 2>/dev/null || echo 0)
	debversion="0.0.0~git${commits}.g${v}${dirty}"
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
nfpm=${NFPM:-}
if [ -z "$nfpm" ]; then
	echo "package.sh: building nfpm v2.45.2"
	GOBIN="$tmp" GOFLAGS=-mod=mod go install github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2
	nfpm="$tmp/nfpm"
fi

dist=${DIST:-dist}
mkdir -p "$dist"
for arch in "${archs[@]}"; do
	goarm=""
	case "$arch" in
	amd64) goarch=amd64 nfpmarch=amd64 ;;
	arm64) goarch=arm64 nfpmarch=arm64 ;;
	armhf | arm | armv7) arch=armhf goarch=arm goarm=7 nfpmarch=arm7 ;;
	*)
		echo "package.sh: unknown architecture $arch (want amd64, arm64 or armhf)" >&2
		exit 2
		;;
	esac
	bin="$tmp/linux_$arch/outpost"
	echo "package.sh: building outpost $version for linux/$goarch${goarm:+ GOARM=$goarm}"
	CGO_ENABLED=0 GOOS=linux GOARCH=$goarch GOARM=$goarm \
		go build -trimpath -ldflags "-s -w -X main.version=$version" -o "$bin" ./cmd/outpost
	deb="$dist/outpost_${debversion}_${arch}.deb"
	PKG_ARCH=$nfpmarch PKG_VERSION=$debversion PKG_BINARY=$bin \
		"$nfpm" package --config systemd/nfpm.yaml --packager deb --target "$deb"
	echo "package.sh: $deb"
done
