//! YAML of cellnet objects as users write them, for `kubectl apply` in end-to-end tests.
use std::net::Ipv4Addr;

/// The BGP port every test speaker uses (one port, many 127.x addresses).
pub const BGP_PORT: u16 = 1790;

fn endpoint(name: &str, cell: &str, address: Ipv4Addr, asn: u32, sdn: &str) -> String {
    format!(
        "apiVersion: cellnet.io/v1alpha1\nkind: InfraEndpoint\nmetadata:\n  name: {name}\nspec:\n  cell: {cell}\n  \
         address: {address}\n  asn: {asn}\n  port: {BGP_PORT}\n{sdn}"
    )
}

/// An InfraEndpoint managed through GoBGP's API at `api_url`.
pub fn gobgp_endpoint(name: &str, cell: &str, address: Ipv4Addr, asn: u32, api_url: &str) -> String {
    endpoint(
        name,
        cell,
        address,
        asn,
        &format!("  sdn:\n    type: GoBGP\n    url: {api_url}\n"),
    )
}

/// An InfraEndpoint managed through OpenDaylight's RESTCONF root `url`, credentials in `secret`.
pub fn odl_endpoint(name: &str, cell: &str, address: Ipv4Addr, asn: u32, url: &str, secret: &str) -> String {
    let sdn = format!(
        "  sdn:\n    type: OpenDaylight\n    url: {url}\n    credentialsSecretRef:\n      name: {secret}\n"
    );
    endpoint(name, cell, address, asn, &sdn)
}

/// An external InfraEndpoint (no `sdn`): cellnet never configures it.
pub fn external_endpoint(name: &str, cell: &str, address: Ipv4Addr, asn: u32) -> String {
    endpoint(name, cell, address, asn, "")
}

/// A CellInterconnect with test timers (hold 9 s, keepalive 3 s); `extra_bgp` is appended to
/// `spec.bgp` (indented four spaces), e.g. a `passwordSecretRef`.
pub fn interconnect(name: &str, local: &str, remote: &str, extra_bgp: &str) -> String {
    format!(
        "apiVersion: cellnet.io/v1alpha1\nkind: CellInterconnect\nmetadata:\n  name: {name}\nspec:\n  \
         localEndpoint:\n    name: {local}\n  remoteEndpoint:\n    name: {remote}\n  bgp:\n    holdTime: 9\n    \
         keepaliveInterval: 3\n{extra_bgp}"
    )
}
