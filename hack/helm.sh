#!/usr/bin/env bash
# Builds (or reuses) a pinned `helm` from its Go module and prints the binary's path as its last
# line. Helm has no Debian 12 package, and these machines have no prebuilt downloads: the Go module
# proxy is the only source.
#
#   bash hack/helm.sh         build or reuse helm $HELM_VERSION
#
# Environment:
#   HELM            an existing helm binary: used as is, nothing built
#   HELM_VERSION    override the pin (default below)
#   CELLNET_BIN_DIR where to install (default $HOME/.cache/cellnet/bin)
#
# Progress goes to stderr; stdout carries only the binary's path.
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v3.21.4}"
bin_dir="${CELLNET_BIN_DIR:-$HOME/.cache/cellnet/bin}"
out="$bin_dir/helm-$HELM_VERSION"
start=$SECONDS
log() { printf '[helm %3ss] %s\n' "$((SECONDS - start))" "$*" >&2; }

if [ -n "${HELM:-}" ] && [ -x "$HELM" ]; then
  log "using HELM=$HELM (nothing built)"
  echo "$HELM"
  exit 0
fi
if [ -x "$out" ]; then
  log "cached: $out ($("$out" version --short 2>/dev/null))"
  echo "$out"
  exit 0
fi

command -v go >/dev/null || { log "ERROR: Go is needed to build helm (apt-get install golang-go)"; exit 1; }
mkdir -p "$bin_dir"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
log "building helm $HELM_VERSION from helm.sh/helm/v3 (cold: about 3.5 min on 2 cores; progress every 100 packages)"
# `go install pkg@version` builds exactly the module's go.sum; GOFLAGS=-mod=mod lets it resolve
# without a workspace. Version stamped like upstream's Makefile so `helm version` is truthful.
ld="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
ld="$ld -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
# Each package line go prints with -v is progress; count them instead of flooding the log.
CGO_ENABLED=0 GOFLAGS=-mod=mod GOBIN="$tmp" \
  go install -v -trimpath -ldflags "$ld" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" 2>&1 |
  awk -v t0="$start" '{ n++; if (n % 100 == 0) { printf "[helm] %d packages compiled\n", n > "/dev/stderr" } }
                      /^(go: |#|.*\.go:[0-9]+)/ { print > "/dev/stderr" }'
[ -x "$tmp/helm" ] || { log "ERROR: go install produced no helm binary"; exit 1; }
mv "$tmp/helm" "$out"
log "$("$out" version --short) built in $((SECONDS - start)) s: $out"
echo "$out"
