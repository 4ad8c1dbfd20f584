#!/usr/bin/env bash
# Builds a real test control plane (kube-apiserver, kubectl, etcd) from the Go module proxy and
# prints the directory holding the three binaries as its last line.
#
#   bash hack/envtest.sh            build (or reuse) the pinned versions
#   bash hack/envtest.sh --update   regenerate the wrapper modules in hack/envtest/ (go.mod, go.sum)
#
# Environment:
#   KUBEBUILDER_ASSETS   a directory that already holds the three binaries: used as is, nothing built
#   CELLNET_ASSETS_DIR   where to install (default $HOME/.cache/cellnet/assets/k8s-<v>-etcd-<v>)
#   K8S_VERSION / ETCD_VERSION   override the pins (fallbacks are tried automatically)
#
# Progress goes to stderr; stdout carries only the final directory.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.34.4}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
# Tried in order when the pinned Kubernetes version does not build (issue: skeleton, "Fallbacks").
K8S_FALLBACKS=(v1.34.3 v1.35.4 v1.36.3)

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
wrappers="$here/envtest"
start=$SECONDS

log() { printf '[envtest %3ss] %s\n' "$((SECONDS - start))" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

has_all() { [ -x "$1/kube-apiserver" ] && [ -x "$1/etcd" ] && [ -x "$1/kubectl" ]; }

if [ -n "${KUBEBUILDER_ASSETS:-}" ]; then
  if has_all "$KUBEBUILDER_ASSETS"; then
    log "using KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS (nothing built)"
    echo "$KUBEBUILDER_ASSETS"
    exit 0
  fi
  log "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS lacks kube-apiserver, etcd or kubectl; building instead"
fi

command -v go >/dev/null || die "Go is needed to build the control plane (apt-get install golang-go)"
export CGO_ENABLED=0 GOFLAGS="${GOFLAGS:--buildvcs=false}"

# Writes hack/envtest/kubernetes-<v>/go.mod with one replace per staging module that
# k8s.io/kubernetes lists at v0.0.0 (derived from its go.mod, never typed by hand).
generate_k8s_module() {
  local v="$1" dir="$wrappers/kubernetes-$1" gomod staging minor patch
  minor="$(echo "$v" | cut -d. -f2)"; patch="$(echo "$v" | cut -d. -f3)"
  log "resolving k8s.io/kubernetes@$v"
  gomod="$(go mod download -json "k8s.io/kubernetes@$v" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')"
  [ -f "$gomod" ] || die "go mod download k8s.io/kubernetes@$v gave no go.mod"
  staging="$(sed -nE 's/^[[:space:]]*(k8s\.io\/[^[:space:]]+) v0\.0\.0$/\1/p' "$gomod" | sort -u)"
  [ -n "$staging" ] || die "no staging modules found in $gomod"
  rm -rf "$dir"; mkdir -p "$dir"
  (
    cd "$dir"
    go mod init cellnet.io/hack/envtest/kubernetes >/dev/null 2>&1
    go mod edit -go=1.24.0 -require "k8s.io/kubernetes@$v"
    for m in $staging; do go mod edit -replace "$m=$m@v0.$minor.$patch"; done
    log "$(echo "$staging" | wc -l) staging modules replaced at v0.$minor.$patch; resolving tools"
    go get -tool "k8s.io/kubernetes/cmd/kube-apiserver@$v" "k8s.io/kubernetes/cmd/kubectl@$v" >&2
  )
}

generate_etcd_module() {
  local v="$1" dir="$wrappers/etcd-$1"
  rm -rf "$dir"; mkdir -p "$dir"
  (
    cd "$dir"
    go mod init cellnet.io/hack/envtest/etcd >/dev/null 2>&1
    go get -tool "go.etcd.io/etcd/server/v3@$v" >&2
  )
}

if [ "${1:-}" = "--update" ]; then
  generate_k8s_module "$K8S_VERSION"
  generate_etcd_module "$ETCD_VERSION"
  log "wrapper modules written under $wrappers; commit them"
  exit 0
fi

build_k8s() {
  local v="$1" out="$2" dir="$wrappers/kubernetes-$1" minor ld
  [ -f "$dir/go.mod" ] || generate_k8s_module "$v"
  minor="$(echo "$v" | cut -d. -f2)"
  ld="-s -w -X k8s.io/component-base/version.gitVersion=$v -X k8s.io/component-base/version.gitMajor=1"
  ld="$ld -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
  ld="$ld -X k8s.io/client-go/pkg/version.gitVersion=$v"
  for cmd in kube-apiserver kubectl; do
    log "building $cmd $v (a cold build takes 10-20 min on 2 cores)"
    (cd "$dir" && go build -mod=readonly -trimpath -ldflags "$ld" -o "$out/$cmd" "k8s.io/kubernetes/cmd/$cmd") || return 1
  done
}

build_etcd() {
  local v="$1" out="$2" dir="$wrappers/etcd-$1"
  [ -f "$dir/go.mod" ] || generate_etcd_module "$v"
  log "building etcd $v"
  (cd "$dir" && go build -mod=readonly -trimpath -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3) || return 1
}

# Debian's etcd-server is the documented fallback for etcd only.
debian_etcd() {
  local out="$1"
  log "falling back to Debian's etcd-server package"
  if [ "$(id -u)" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends etcd-server >&2 || return 1
    ln -sf "$(command -v etcd)" "$out/etcd"
  else
    local tmp; tmp="$(mktemp -d)"
    (cd "$tmp" && apt-get download etcd-server >&2 && dpkg -x ./etcd-server_*.deb root) || return 1
    cp "$tmp/root/usr/bin/etcd" "$out/etcd"; rm -rf "$tmp"
  fi
}

assets_for() { echo "${CELLNET_ASSETS_DIR:-$HOME/.cache/cellnet/assets/k8s-$1-etcd-$ETCD_VERSION}"; }

errors=""
for v in "$K8S_VERSION" "${K8S_FALLBACKS[@]}"; do
  out="$(assets_for "$v")"
  if has_all "$out"; then
    log "cached: $out"
    echo "$out"
    exit 0
  fi
  mkdir -p "$out"
  if [ ! -x "$out/kube-apiserver" ] || [ ! -x "$out/kubectl" ]; then
    if ! build_k8s "$v" "$out" 2> >(tee "$out/build-k8s.err" >&2); then
      errors="$errors\nk8s $v: $(tail -n 5 "$out/build-k8s.err")"
      log "building Kubernetes $v failed; trying the next fallback"
      continue
    fi
  fi
  if [ ! -x "$out/etcd" ]; then
    build_etcd "$ETCD_VERSION" "$out" 2> >(tee "$out/build-etcd.err" >&2) || {
      errors="$errors\netcd $ETCD_VERSION: $(tail -n 5 "$out/build-etcd.err")"
      debian_etcd "$out" || die "no etcd could be had:$(printf '%b' "$errors")"
    }
  fi
  rm -f "$out"/build-*.err
  for b in kube-apiserver etcd; do log "$("$out/$b" --version 2>&1 | head -n 1)"; done
  log "$("$out/kubectl" version --client 2>&1 | head -n 1)"
  log "done in $((SECONDS - start)) s"
  echo "$out"
  exit 0
done
die "no real kube-apiserver could be built:$(printf '%b' "$errors")"
