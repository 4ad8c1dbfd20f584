#!/usr/bin/env bash
# `make image`: the controller image built without a Docker daemon, with Debian's buildah.
#
# FROM scratch: the release binary, exactly the shared libraries it loads (from ldd, with the
# dynamic loader), the CA bundle, and an /etc/passwd naming uid 65532 (the chart's runAsUser). No
# shell, no package manager. Prints the image's name as its last line.
#
#   IMAGE=localhost/cellnet-controller:dev bash hack/image.sh          build and inspect
#   bash hack/image.sh --run KUBECONFIG                                 also run it (podman)
#
# Releases use the Dockerfile (static musl binary on distroless, for CI systems with a daemon or
# BuildKit); this script is for machines without one. Storage: buildah's vfs driver under
# $CELLNET_IMAGE_STORE (default ~/.cache/cellnet/containers), so nothing needs overlay or fuse.
set -euo pipefail
cd "$(dirname "$0")/.."
source hack/lib.sh

commit="$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
IMAGE="${IMAGE:-localhost/cellnet-controller:$commit}"
store="${CELLNET_IMAGE_STORE:-$HOME/.cache/cellnet/containers}"
buildah=(buildah --storage-driver vfs --root "$store/storage" --runroot "$store/run")

install_buildah() {
  command -v buildah >/dev/null && return 0
  local log="$CELLNET_LOG_DIR/cellnet-image-apt.log"
  mkdir -p "$CELLNET_LOG_DIR"
  echo "installing buildah and podman from Debian's packages (apt log: $log)" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends buildah podman >>"$log" 2>&1 \
    || { echo "apt-get install buildah podman failed; full log: $log" >&2; tail -n 20 "$log" >&2; return 1; }
}

# The root filesystem: binary, its libraries and loader, CA bundle, passwd/group.
assemble() {
  local root="$1" bin=target/release/cellnet-controller lib
  mkdir -p "$root/usr/local/bin" "$root/etc/ssl/certs" "$root/tmp"
  cp "$bin" "$root/usr/local/bin/cellnet-controller"
  for lib in $(ldd "$bin" | grep -o '/[^ ]*'); do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
  cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
  echo 'nonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin' >"$root/etc/passwd"
  echo 'nonroot:x:65532:' >"$root/etc/group"
  chmod 1777 "$root/tmp"
}

build() {
  local root ctr
  root="$(mktemp -d)"
  assemble "$root"
  ctr="$("${buildah[@]}" from scratch)"
  "${buildah[@]}" copy "$ctr" "$root" / >/dev/null
  "${buildah[@]}" config --user 65532:65532 --workingdir / \
    --entrypoint '["/usr/local/bin/cellnet-controller"]' --cmd '--leader-elect --log-format=json' \
    --port 8080 --port 8081 --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    --label org.opencontainers.image.source=https://github.com/cellnet/cellnet \
    --label "org.opencontainers.image.revision=$commit" "$ctr"
  "${buildah[@]}" commit --quiet --rm "$ctr" "$IMAGE" >/dev/null
  rm -rf "$root"
}

# What an operator checks: user, entrypoint, no shell, size.
inspect() {
  "${buildah[@]}" inspect --type image --format \
    'user={{.OCIv1.Config.User}} entrypoint={{.OCIv1.Config.Entrypoint}} cmd={{.OCIv1.Config.Cmd}}' "$IMAGE"; echo
  "${buildah[@]}" images --format 'size={{.Size}}' "$IMAGE"
  local ctr mnt
  ctr="$("${buildah[@]}" from "$IMAGE")"
  mnt="$("${buildah[@]}" mount "$ctr")"
  if [ -e "$mnt/bin/sh" ] || [ -e "$mnt/usr/bin/sh" ]; then echo "a shell is in the image" >&2; exit 1; fi
  echo "files: $(cd "$mnt" && find . -type f | sort | tr '\n' ' ')"
  # The image's own files suffice: its binary runs chrooted in them, as uid 65532.
  chroot --userspec=65532:65532 "$mnt" /usr/local/bin/cellnet-controller --version
  "${buildah[@]}" umount "$ctr" >/dev/null
  "${buildah[@]}" rm "$ctr" >/dev/null
}

# podman run as the chart runs it: host network, read-only root, uid 65532, no capabilities, the
# kubeconfig mounted. No rlimits of podman's own (`default_ulimits = []`, `--ulimit host`): where
# setrlimit is not permitted (this project's machines) crun would stop there.
run_image() {
  local kubeconfig="$1" conf
  conf="$(mktemp)"
  printf '[containers]\ndefault_ulimits = []\n' >"$conf"
  CONTAINERS_CONF="$conf" podman --storage-driver vfs --root "$store/storage" --runroot "$store/run" run --rm \
    --network host --read-only --user 65532:65532 --cap-drop ALL --security-opt no-new-privileges \
    --ulimit host -v "$kubeconfig:/kubeconfig:ro" -e KUBECONFIG=/kubeconfig "$IMAGE" \
    --metrics-bind-address=127.0.0.1:0 --health-probe-bind-address=127.0.0.1:0
}

stage "buildah" install_buildah
stage "release build (target/release/cellnet-controller)" quiet image-cargo \
  env CELLNET_GIT_COMMIT="$commit" cargo build --release --locked --bin cellnet-controller
stage "image $IMAGE (buildah, FROM scratch)" build
stage "inspect" inspect
if [ "${1:-}" = "--run" ]; then
  stage "podman run $IMAGE" run_image "${2:?--run needs a kubeconfig}"
fi
echo "$IMAGE"
