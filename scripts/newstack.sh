#!/usr/bin/env bash
# Builds today's container stack (issue 10): containerd 2.x with its runc v2
# shim and ctr, runc 1.3 with seccomp, and crictl, each once, into
# $NEWSTACK_CACHE/<name>-<version>/ (default /var/cache/seccomp-shim-newstack).
# A component's directory counts as built only when its .stamp exists (written
# last); one without it is removed and built again. Prints the binaries' paths
# and, last, the line to export for the e2e tests.
# Needs Go, gcc and libseccomp-dev (scripts/deps.sh); the first run downloads
# the modules through GOPROXY.
set -euo pipefail

CONTAINERD_VERSION=${CONTAINERD_VERSION:-v2.4.2}
# v1.3.3's go.mod has replace directives, which `go install pkg@version` refuses.
RUNC_VERSION=${RUNC_VERSION:-v1.3.0}
CRICTL_VERSION=${CRICTL_VERSION:-v1.37.0}
cache=${NEWSTACK_CACHE:-/var/cache/seccomp-shim-newstack}

die() { echo "newstack: $*" >&2; exit 1; }
command -v go >/dev/null || die "go not found on PATH"

# build NAME VERSION [go install args...]: installs into cache/NAME-VERSION.
build() {
	local name=$1 version=$2 dir="$cache/$1-$2"
	shift 2
	if [ -f "$dir/.stamp" ]; then
		return 0
	fi
	rm -rf "$dir"
	mkdir -p "$dir" || die "cannot create $dir (set NEWSTACK_CACHE to a writable directory)"
	echo "newstack: building $name $version into $dir" >&2
	local start=$SECONDS
	GOBIN="$dir" go install "$@" ||
		die "building $name $version failed (go install $*); $dir is left without .stamp and will be redone"
	echo "$name $version built in $((SECONDS - start))s by $(go version)" >"$dir/.stamp"
}

build containerd "$CONTAINERD_VERSION" \
	"github.com/containerd/containerd/v2/cmd/containerd@$CONTAINERD_VERSION" \
	"github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2@$CONTAINERD_VERSION" \
	"github.com/containerd/containerd/v2/cmd/ctr@$CONTAINERD_VERSION"
# runc's seccomp support is cgo with libseccomp; without the tag it has none.
CGO_ENABLED=1 build runc "$RUNC_VERSION" -tags seccomp "github.com/opencontainers/runc@$RUNC_VERSION"
build crictl "$CRICTL_VERSION" "sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION"

for f in \
	"$cache/containerd-$CONTAINERD_VERSION/containerd" \
	"$cache/containerd-$CONTAINERD_VERSION/containerd-shim-runc-v2" \
	"$cache/containerd-$CONTAINERD_VERSION/ctr" \
	"$cache/runc-$RUNC_VERSION/runc" \
	"$cache/crictl-$CRICTL_VERSION/crictl"; do
	[ -x "$f" ] || die "$f missing after the build; remove its directory and run again"
	echo "$f"
done
echo "SECCOMP_SHIM_NEWSTACK=$cache"
