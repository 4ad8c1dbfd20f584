//! The speakers seen and changed from the outside, with the `gobgp` CLI as a person would: the
//! operators' own paths and policies, and what cellnet left.
use serde_json::Value;
use support::cells::TrafficCell;

use crate::support;

/// `gobgp global rib add <prefix> nexthop <underlay>`: a path made by hand (identifier 0).
pub fn add_path_by_hand(cell: &TrafficCell, prefix: &str) {
    let next_hop = cell.underlay.to_string();
    let args = ["global", "rib", "add", prefix, "nexthop", &next_hop, "-a", "ipv4"];
    cell.speaker
        .cli(&args)
        .unwrap_or_else(|e| panic!("{}: {e}", cell.name));
}

/// The IPv4 paths of the speaker's RIB for `prefix`, as GoBGP's JSON.
pub fn rib_paths(cell: &TrafficCell, prefix: &str) -> Vec<Value> {
    let out = cell
        .speaker
        .cli(&["global", "rib", "-a", "ipv4", "-j"])
        .unwrap_or_else(|e| panic!("{}: {e}", cell.name));
    let rib: Value = serde_json::from_str(out.trim()).unwrap_or(Value::Null);
    rib[prefix].as_array().cloned().unwrap_or_default()
}

/// The operator's own global import policy on `cell`'s speaker, made with the CLI as a person
/// would (it rejects an IPv6 prefix that no test announces).
pub fn add_operator_policy(cell: &TrafficCell) {
    let commands: [&[&str]; 6] = [
        &["policy", "prefix", "add", "operator-nets", "2001:db8:ffff::/48"],
        &["policy", "statement", "add", "operator-stmt"],
        &[
            "policy",
            "statement",
            "operator-stmt",
            "add",
            "condition",
            "prefix",
            "operator-nets",
        ],
        &["policy", "statement", "operator-stmt", "add", "action", "reject"],
        &["policy", "add", "operator-policy", "operator-stmt"],
        &["global", "policy", "import", "add", "operator-policy"],
    ];
    for args in commands {
        cell.speaker
            .cli(args)
            .unwrap_or_else(|e| panic!("{}: {e}", cell.name));
    }
}

/// The operator's policy and prefix set as the CLI shows them, and whether the policy is still
/// assigned to the global import.
pub fn operator_state(cell: &TrafficCell) -> (String, String, bool) {
    let cli = |args: &[&str]| {
        cell.speaker
            .cli(args)
            .unwrap_or_else(|e| panic!("{}: {e}", cell.name))
    };
    let assigned = cli(&["global", "policy", "import"]).contains("Name operator-policy:");
    (
        cli(&["policy", "operator-policy"]),
        cli(&["policy", "prefix", "operator-nets"]),
        assigned,
    )
}

/// Every policy object on the speaker whose name says it is cellnet's, as the CLI lists them.
pub fn cellnet_objects(cell: &TrafficCell) -> Vec<String> {
    let lists: [&[&str]; 5] = [
        &["policy"],
        &["policy", "prefix"],
        &["policy", "neighbor"],
        &["global", "policy", "import"],
        &["global", "policy", "export"],
    ];
    lists
        .iter()
        .map(|args| cell.speaker.cli(args).unwrap_or_else(|e| e))
        .collect::<String>()
        .lines()
        .filter(|l| l.contains("cellnet-"))
        .map(str::to_owned)
        .collect()
}

/// `gobgp neighbor add <peer's underlay> as <peer's AS>`: a session made by hand.
pub fn add_peer_by_hand(cell: &TrafficCell, peer: &TrafficCell) {
    let (address, asn) = (peer.underlay.to_string(), peer.asn.to_string());
    cell.speaker
        .cli(&["neighbor", "add", &address, "as", &asn])
        .unwrap_or_else(|e| panic!("{}: {e}", cell.name));
}

/// The addresses of the speaker's peers, sorted.
pub fn peer_addresses(cell: &TrafficCell) -> Vec<String> {
    let peers = cell.speaker.neighbors_json();
    let mut addresses: Vec<String> = peers
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| p["conf"]["neighbor_address"].to_string())
        .collect();
    addresses.sort();
    addresses
}
