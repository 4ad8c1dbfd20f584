#!/usr/bin/env bash
# Installs the system packages that tests and the demo need, if missing. Idempotent and quiet when done.
set -euo pipefail
need=()
command -v gobgpd >/dev/null || need+=(gobgpd)
# FRR (zebra + bgpd) as each test cell's fabric router: installs what the cell's speaker learns into
# the namespace's kernel table (tests/networks_traffic.rs).
[ -x /usr/lib/frr/bgpd ] || need+=(frr)
# Argo CD health checks (deploy/argocd/health.lua) are tested with Lua 5.1 (Argo CD's gopher-lua
# implements 5.1) and 5.4.
command -v lua5.1 >/dev/null || need+=(lua5.1)
command -v lua5.4 >/dev/null || need+=(lua5.4)
# A real Neutron (with neutron-dynamic-routing) and Keystone for tests/neutron.rs and tests/e2e_neutron.rs.
[ -d /usr/lib/python3/dist-packages/neutron_dynamic_routing ] || need+=(python3-neutron python3-neutron-dynamic-routing)
command -v keystone-manage >/dev/null || need+=(python3-keystone)
# `make demo` shows what appears in Neutron with the OpenStack CLI (bgp commands: neutronclient's plugin).
command -v openstack >/dev/null || need+=(python3-openstackclient)
[ -d /usr/lib/python3/dist-packages/neutronclient/osc/v2/dynamic_routing ] || need+=(python3-neutronclient)
# Prometheus and promtool: the alert rules' unit tests (tests/alerts.rs) and the end-to-end test in
# which a real Prometheus scrapes the controller and evaluates the shipped rules (tests/e2e_prometheus.rs).
command -v promtool >/dev/null || need+=(prometheus)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "hack/prereqs.sh: missing ${need[*]}; run as root or install them (apt-get install ${need[*]})" >&2
  exit 1
fi
# One line of progress; apt's own output (hundreds of lines) goes to a log, shown only on failure.
log="${CELLNET_LOG_DIR:-${TMPDIR:-/tmp}}/cellnet-prereqs-apt.log"
mkdir -p "$(dirname "$log")"
echo "installing ${need[*]} from Debian's packages (apt log: $log)" >&2
export DEBIAN_FRONTEND=noninteractive
{ echo "== $(date -u +%FT%TZ) apt-get install ${need[*]}"; apt-get update -q || true; } >>"$log" 2>&1
if ! apt-get install -y -q --no-install-recommends "${need[@]}" >>"$log" 2>&1; then
  echo "hack/prereqs.sh: apt-get install ${need[*]} failed; last lines below, full log: $log" >&2
  tail -n 20 "$log" >&2
  exit 1
fi
