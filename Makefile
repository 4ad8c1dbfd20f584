# The two commands a newcomer runs (see README.md): `make demo` and `make test`.
# Each installs or builds what it needs; the scripts in hack/ print how long each stage took.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: demo demo-down test fmt lint crds reasons envtest prereqs bench helm chart fuzz image

## Local sandbox: control plane, CRDs, two GoBGP cells, the controller, the examples, status.
demo:
	bash hack/demo.sh up

## Stop everything `make demo` started.
demo-down:
	bash hack/demo.sh down

## The whole suite: fmt, clippy -D warnings, unit and integration tests on real processes.
test:
	bash hack/test.sh

## Regenerate the reason table of docs/reasons.md from the Reason enum (a unit test fails when it is stale).
reasons:
	CELLNET_WRITE_DOCS=1 $(CARGO) test --quiet --locked --lib api::reason::tests::docs_reasons_md_is_the_generated_table

## Build (or reuse) kube-apiserver, etcd and kubectl; prints their directory.
envtest:
	bash hack/envtest.sh

## Install the system packages the tests and the demo use (gobgpd).
prereqs:
	bash hack/prereqs.sh

fmt:
	$(CARGO) fmt

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets --locked -- -D warnings

## Regenerate crds/ from the Rust types.
crds:
	$(CARGO) run --quiet --locked --bin cellnet-controller -- crd --out-dir crds

## Build (or reuse) helm from its Go module; prints its path.
helm:
	bash hack/helm.sh

## Lint and render the Helm chart, build the kustomize base (what tests/packaging.rs checks, by hand).
chart:
	"$$(bash hack/helm.sh | tail -n 1)" lint --strict charts/cellnet
	"$$(bash hack/helm.sh | tail -n 1)" template cellnet charts/cellnet -n cellnet-system >/dev/null
	"$$(bash hack/envtest.sh | tail -n 1)/kubectl" kustomize deploy/ >/dev/null
	@echo "chart and kustomize base OK"

## The full-size benchmark (50 speakers, 1,000 interconnects; release build); figures in target/bench.json.
bench:
	bash hack/prereqs.sh
	KUBEBUILDER_ASSETS="$$(bash hack/envtest.sh | tail -n 1)" $(CARGO) bench --locked --bench cellnet-bench -- --json target/bench.json

## cargo fuzz on every parser of outside input, FUZZ_SECONDS (default 60) per target; fails on a crash.
fuzz:
	bash hack/fuzz.sh

## The controller image without a Docker daemon (buildah, FROM scratch: binary, its libraries, CA bundle); prints its name.
image:
	bash hack/image.sh
