#!/usr/bin/env bash
# `make demo` / `make demo-down`: a local sandbox with a real control plane.
set -euo pipefail
cd "$(dirname "$0")/.."
source hack/lib.sh
SANDBOX="$PWD/.sandbox"
export KUBECONFIG="$SANDBOX/kubeconfig"

down() {
  if [ -f "$SANDBOX/pid" ] && kill -0 "$(cat "$SANDBOX/pid")" 2>/dev/null; then
    kill "$(cat "$SANDBOX/pid")"
    for _ in $(seq 50); do kill -0 "$(cat "$SANDBOX/pid")" 2>/dev/null || break; sleep 0.1; done
    echo "sandbox stopped" >&2
  else
    echo "no sandbox running" >&2
  fi
  rm -f "$SANDBOX/pid" "$SANDBOX/ready"
}

start_sandbox() {
  cargo build --locked --quiet --example sandbox --bin cellnet-controller
  mkdir -p "$SANDBOX"
  rm -f "$SANDBOX/ready"
  nohup target/debug/examples/sandbox "$SANDBOX" >"$SANDBOX/sandbox.log" 2>&1 &
  echo $! >"$SANDBOX/pid"
  for _ in $(seq 600); do
    [ -f "$SANDBOX/ready" ] && return 0
    kill -0 "$(cat "$SANDBOX/pid")" 2>/dev/null || { tail -n 30 "$SANDBOX/sandbox.log" >&2; return 1; }
    sleep 0.5
  done
  echo "sandbox not ready after 300 s; see $SANDBOX/sandbox.log" >&2
  return 1
}

# Neutron: the clouds.yaml Secret for the sandbox's neutron-server, the demo endpoints, and what
# appears in Neutron for each cell, read with the OpenStack CLI.
neutron_demo() {
  local url os
  url="$(cat "$SANDBOX/neutron.url")"
  kubectl create secret generic neutron-demo --dry-run=client -o yaml --from-literal=clouds.yaml="$(printf \
    'clouds:\n  demo:\n    auth_type: none\n    endpoint_override: %s\n' "$url")" | kubectl apply -f - >/dev/null
  stage "apply examples/neutron/demo/" kubectl apply -f examples/neutron/demo/
  stage "wait until Neutron is configured for both cells" \
    kubectl wait --for=condition=NeutronConfigured --timeout=120s infraendpoint/cell1-neutron infraendpoint/cell2-neutron
  echo
  echo "\$ kubectl get infraendpoints -l 'cellnet.io/cell in (cell1,cell2)'"
  kubectl get infraendpoints -l 'cellnet.io/cell in (cell1,cell2)'
  os=(openstack --os-auth-type none --os-endpoint "$url")
  for cell in cell1 cell2; do
    echo
    echo "\$ openstack network list --tags cellnet.io/cell=$cell --long -c Name -c 'Network Type' -c Subnets -c Tags"
    "${os[@]}" network list --tags "cellnet.io/cell=$cell" --long -c Name -c 'Network Type' -c Subnets -c Tags
    echo "\$ openstack bgp speaker show cellnet-$cell -c name -c local_as -c peers -c networks"
    "${os[@]}" bgp speaker show "cellnet-$cell" -c name -c local_as -c peers -c networks
    echo "\$ openstack bgp peer show cellnet-$cell-$cell-neutron -c name -c peer_ip -c remote_as"
    "${os[@]}" bgp peer show "cellnet-$cell-$cell-neutron" -c name -c peer_ip -c remote_as
  done
  echo
}

up() {
  [ -f "$SANDBOX/pid" ] && kill -0 "$(cat "$SANDBOX/pid")" 2>/dev/null && down
  stage "system packages" bash hack/prereqs.sh
  assets="$(stage "control plane binaries (hack/envtest.sh)" bash hack/envtest.sh | tail -n 1)"
  export KUBEBUILDER_ASSETS="$assets" PATH="$assets:$PATH"
  stage "start the sandbox (etcd, kube-apiserver, CRDs, 3 gobgpd, neutron-server, controller)" start_sandbox
  echo
  kubectl version
  echo "readyz: $(kubectl get --raw /readyz)"
  stage "apply examples/" kubectl apply -f examples/
  stage "wait until both interconnects are Ready" \
    kubectl wait --for=condition=Ready --timeout=120s cellinterconnect/cell1-cell2 cellinterconnect/cell1-dc1
  echo
  echo "\$ kubectl get cellnet"
  kubectl get cellnet
  echo
  while read -r name addr port _log; do
    echo "\$ gobgp -p $port neighbor    # $name ($addr)"
    gobgp -u 127.0.0.1 -p "$port" neighbor
    echo
  done <"$SANDBOX/speakers"
  neutron_demo
  echo "The sandbox is running. To use it:"
  echo "  export KUBECONFIG=$KUBECONFIG PATH=$assets:\$PATH"
  echo "Controller log: $(cat "$SANDBOX/controller.log.path")"
  echo "Stop it with: make demo-down"
}

case "${1:-up}" in
  up) up ;;
  down) down ;;
  *) echo "usage: hack/demo.sh up|down" >&2; exit 2 ;;
esac
