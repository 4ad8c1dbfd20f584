#!/usr/bin/env bash
# `make test`: the whole suite, with a timing line per stage.
set -euo pipefail
cd "$(dirname "$0")/.."
source hack/lib.sh

# Progress only: each stage's own output goes to target/make-logs/ (path printed on failure).
stage "system packages" quiet prereqs bash hack/prereqs.sh
assets="$(stage "control plane binaries (hack/envtest.sh)" quiet envtest bash hack/envtest.sh | tail -n 1)"
export KUBEBUILDER_ASSETS="$assets"
# helm for tests/packaging.rs (built from its Go module once, then cached).
HELM="$(stage "helm (hack/helm.sh)" quiet helm bash hack/helm.sh | tail -n 1)"
export HELM
stage "cargo fmt --check" quiet fmt cargo fmt --check
stage "cargo clippy -D warnings" quiet clippy cargo clippy --all-targets --locked -- -D warnings
stage "build tests" quiet build-tests cargo test --locked --no-run
stage "tests" cargo test --locked
# The benchmark at its smallest size, so it cannot rot (full size: make bench).
stage "bench smoke (cellnet-bench --quick)" cargo test --locked --bench cellnet-bench -- --quick
