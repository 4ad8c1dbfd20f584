# syntax=docker/dockerfile:1
# cellnet-controller: a static (musl) binary on distroless, running as non-root.
#
#   docker build -t <registry>/cellnet-controller:<tag> .
#
# Releases are built from this file (CI systems with a Docker daemon or BuildKit). Machines without
# one build an equivalent image with `make image` (hack/image.sh: buildah, FROM scratch, the glibc
# binary with its libraries; docs/operations.md#image). The build needs no protoc (build.rs uses protox).

ARG RUST_VERSION=1.89
FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS build
ARG TARGETARCH
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# No .git in the build context: pass the commit for --version and cellnet_build_info
# (--build-arg CELLNET_GIT_COMMIT=$(git rev-parse --short=12 HEAD)); `unknown` otherwise.
ARG CELLNET_GIT_COMMIT=""
ENV CELLNET_GIT_COMMIT=${CELLNET_GIT_COMMIT}
# Cache dependencies separately from the sources: manifests first.
COPY Cargo.toml Cargo.lock build.rs ./
COPY proto ./proto
RUN case "${TARGETARCH:-amd64}" in \
      amd64) echo x86_64-unknown-linux-musl > /target ;; \
      arm64) echo aarch64-unknown-linux-musl > /target ;; \
      *) echo "unsupported TARGETARCH ${TARGETARCH}" >&2; exit 1 ;; \
    esac \
 && rustup target add "$(cat /target)"
COPY src ./src
# Cargo.toml names these targets; they are not built, but the manifest must find them.
COPY hack/sandbox ./hack/sandbox
COPY benches ./benches
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin cellnet-controller --target "$(cat /target)" \
 && cp "target/$(cat /target)/release/cellnet-controller" /cellnet-controller

# distroless/static: no shell, no package manager, CA certificates and /etc/passwd only.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /cellnet-controller /usr/local/bin/cellnet-controller
# 65532 is distroless' "nonroot"; numeric, so that runAsNonRoot can verify it.
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["/usr/local/bin/cellnet-controller"]
CMD ["--leader-elect", "--log-format=json"]
