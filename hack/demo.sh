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
  cargo build --locked --quiet --example sandbox --bin cellnet-controller --bin kubectl-cellnet
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
  # The label lets cellnet use the Secret (docs/security.md).
  kubectl label secret neutron-demo cellnet.io/credentials=true --overwrite >/dev/null
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
    # The peer's name ends in the endpoint's uid (cellnet's owner mark, docs/neutron.md).
    peer="cellnet-$cell-$cell-neutron-$(kubectl get infraendpoint "$cell-neutron" -o jsonpath='{.metadata.uid}')"
    echo "\$ openstack bgp peer show $peer -c name -c peer_ip -c remote_as"
    "${os[@]}" bgp peer show "$peer" -c name -c peer_ip -c remote_as
  done
  echo
}

# The API port of speaker $1 (cell1, cell2, dc1), from the sandbox's list.
api_port() {
  awk -v name="$1" '$1 == name { print $3 }' "$SANDBOX/speakers"
}

# The demo's speakers listen on 127.0.0.0/8, and GoBGP treats an UPDATE whose next hop is in 127/8
# as a withdrawal ("invalid nexthop address"). As a cell's operator may, add one export policy of
# our own on each managed speaker, after cellnet's (cellnet keeps its policies first and leaves
# this one alone): it sets the next hop to a documentation address standing for the cell's
# gateway. Added once cellnet has started BGP there (starting BGP resets the assignments); the
# soft reset sends again what went out before it.
next_hop_policy() {
  local g=(gobgp -u 127.0.0.1 -p "$(api_port "$1")") peer
  if ! "${g[@]}" policy demo-next-hop >/dev/null 2>&1; then
    "${g[@]}" policy statement demo-next-hop add action next-hop "$2"
    "${g[@]}" policy add demo-next-hop demo-next-hop
  fi
  "${g[@]}" global policy export | grep -q demo-next-hop || "${g[@]}" global policy export add demo-next-hop
  for peer in $("${g[@]}" neighbor | awk 'NR > 1 { print $1 }'); do
    "${g[@]}" neighbor "$peer" softresetout
  done
}

# dc1 is configured by hand: its operators announce the prefix its InfraEndpoint declares, and a
# default route it does not declare (cell1 rejects that one).
dc1_routes() {
  local g=(gobgp -u 127.0.0.1 -p "$(api_port dc1)")
  "${g[@]}" global rib add 192.0.2.224/27 nexthop 198.51.100.13
  "${g[@]}" global rib add 0.0.0.0/0 nexthop 198.51.100.13
}

# The demo has no fabric router (a real cell has one, say FRR with advertise-all-vni, announcing
# its VNIs to the cell's speaker; docs/l2.md). As the FABRIC'S STAND-IN, each cell's gobgpd gets
# by hand the EVPN inclusive-multicast (type-3) route that fabric would announce for segment vip
# (VNI 100): the cell's VTEP (spec.vtep, a documentation address, because GoBGP drops a route
# whose next hop is in 127/8) and the route target FRR derives, <AS>:<VNI>. cellnet carries it to
# the other cell and reports it there.
fabric_stand_in() {
  local g=(gobgp -u 127.0.0.1 -p "$(api_port "$1")") vtep="$2" asn="$3"
  "${g[@]}" global rib -a evpn add multicast "$vtep" etag 0 rd "$vtep:100" rt "$asn:100" \
    encap vxlan pmsi ingress-repl 100 "$vtep" nexthop "$vtep"
}

operators_parts() {
  next_hop_policy cell1 198.51.100.11
  next_hop_policy cell2 198.51.100.12
  dc1_routes
  fabric_stand_in cell1 198.51.100.11 65011
  fabric_stand_in cell2 198.51.100.12 65012
}

# The stretched segment: each cell's EVPN table (its own type-3 route from the fabric's stand-in,
# the other cell's from cellnet's session) and the plugin's view of status.
segments_demo() {
  local name addr port
  while read -r name addr port _log; do
    [ "$name" = dc1 ] && continue
    echo "\$ gobgp -p $port global rib -a evpn    # $name: its own route is the fabric's stand-in's"
    gobgp -u 127.0.0.1 -p "$port" global rib -a evpn
    echo
  done <"$SANDBOX/speakers"
  echo "\$ kubectl cellnet segments"
  PATH="$PWD/target/debug:$PATH" kubectl cellnet segments
  echo
}

# The networks: each speaker's table (its own networks and those it accepted) and the plugin.
routes_demo() {
  echo
  while read -r name addr port _log; do
    echo "\$ gobgp -p $port global rib    # $name ($addr)"
    gobgp -u 127.0.0.1 -p "$port" global rib
    echo
  done <"$SANDBOX/speakers"
  echo "\$ kubectl cellnet routes"
  PATH="$PWD/target/debug:$PATH" kubectl cellnet routes
  echo
}

up() {
  [ -f "$SANDBOX/pid" ] && kill -0 "$(cat "$SANDBOX/pid")" 2>/dev/null && down
  # Progress only: apt's and the builds' output go to target/make-logs/ (path printed on failure).
  stage "system packages" quiet prereqs bash hack/prereqs.sh
  assets="$(stage "control plane binaries (hack/envtest.sh)" quiet envtest bash hack/envtest.sh | tail -n 1)"
  export KUBEBUILDER_ASSETS="$assets" PATH="$assets:$PATH"
  stage "start the sandbox (etcd, kube-apiserver, CRDs, 3 gobgpd, neutron-server, controller)" start_sandbox
  echo
  kubectl version
  echo "readyz: $(kubectl get --raw /readyz)"
  stage "apply examples/" kubectl apply -f examples/
  stage "wait until cellnet has started BGP on cell1 and cell2" \
    kubectl wait --for=condition=SpeakerConfigured --timeout=120s infraendpoint/cell1-gobgp infraendpoint/cell2-gobgp
  stage "the operators' own parts: a next-hop policy on cell1 and cell2, dc1's routes, the fabric's stand-in (EVPN type-3 route of segment vip) on cell1 and cell2" operators_parts
  stage "wait until both interconnects are Ready (sessions up, routes exchanged, segment vip stretched)" \
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
  routes_demo
  segments_demo
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
