//! The fuzz entry points: one function per parser of outside input, shared by the `cargo fuzz`
//! targets (`fuzz/fuzz_targets/`, built as the library of `fuzz/Cargo.toml`) and by the
//! regression test `tests/fuzz_regressions.rs` (which includes this file with `#[path]`), so a
//! kept crash input is replayed through exactly the code that found it.
//!
//! Each function takes raw bytes, feeds them to cellnet's parsers the way the program does, and
//! panics when a property that must hold for any input does not (besides the parsers' own
//! panics): bounded messages, no configuration difference after applying our own update, ...
//! It uses only crates that cellnet itself depends on, so the main package's tests can build it.
use std::net::IpAddr;

use cellnet::neutron::clouds;
use cellnet::plugin::{self, Cli, Command};
use cellnet::sdn::gobgp::{convert, proto};
use cellnet::sdn::opendaylight::{errors, model};
use cellnet::sdn::{AddressFamily, Password, PeerConfig, SpeakerConfig};
use clap::Parser as _;
use prost::Message as _;
use serde_json::Value;

/// A fuzz entry point: any bytes in, a panic when a parser or a property fails.
pub type Entry = fn(&[u8]);

/// The fuzz targets, by name (`fuzz/fuzz_targets/<name>.rs`, `fuzz/regressions/<name>/`).
pub const TARGETS: &[(&str, Entry)] = &[
    ("restconf_json", restconf_json),
    ("restconf_errors", restconf_errors),
    ("gobgp_reply", gobgp_reply),
    ("clouds_yaml", clouds_yaml),
    ("plugin_args", plugin_args),
];

/// Longest message an SDN error may carry into a status condition or an Event.
const MAX_MESSAGE_CHARS: usize = 2048;

/// A desired peer, varied by one input byte so both the IPv4/IPv6, password and multihop
/// branches are exercised.
fn desired(selector: u8) -> PeerConfig {
    let v6 = selector & 1 != 0;
    PeerConfig {
        neighbor: if v6 { "2001:db8::2" } else { "192.0.2.2" }.parse().unwrap(),
        peer_asn: 65002,
        remote_port: if selector & 2 != 0 { 179 } else { 1790 },
        local_address: if v6 { "2001:db8::1" } else { "192.0.2.1" }.parse().unwrap(),
        hold_time: 9,
        keepalive_interval: if selector & 4 != 0 { 0 } else { 3 },
        ebgp_multihop: (selector & 8 != 0).then_some(selector >> 4),
        families: match selector % 3 {
            0 => vec![],
            1 => vec![AddressFamily::Ipv4Unicast],
            _ => vec![AddressFamily::Ipv4Unicast, AddressFamily::L2vpnEvpn],
        },
        password: (selector & 16 != 0).then(|| Password::new("fuzz-password")),
        owner: "cellnet:ns/fuzz".into(),
        admin_down: selector & 32 != 0,
        admin_message: None,
        owned_record: true,
        max_prefixes: (selector & 64 != 0).then_some(100),
        passive: selector & 128 != 0,
        graceful_restart: selector.is_multiple_of(5).then_some(120),
    }
}

/// Bodies OpenDaylight's RESTCONF returns on success: neighbour lists, one neighbour, its
/// state, the global config (what `opendaylight::client` parses and `model` reads).
pub fn restconf_json(data: &[u8]) {
    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let d = desired(data.first().copied().unwrap_or_default());
    for entry in model::neighbor_entries(&body) {
        let _ = model::diff(&d, 65001, &entry);
        let _ = model::session_in_state(&entry);
        if let Some(peer) = model::observed(&entry) {
            // What we would write for the neighbour we read compares equal to itself.
            let mine = PeerConfig {
                neighbor: peer.neighbor,
                ..d.clone()
            };
            let written = model::neighbor(&mine, 65001);
            assert_eq!(model::diff(&mine, 65001, &written), Vec::<&str>::new());
            assert_eq!(model::address_of(&written), Some(peer.neighbor));
        }
    }
    let _ = model::session_in_state(&body);
    let _ = model::diff(&d, 65001, &body);
    if let Some((asn, _)) = model::global_config(&body) {
        // An AS number is only ever read from an integer the body really contains.
        let text = body.to_string();
        assert!(
            text.contains(&asn.to_string()),
            "AS {asn} read from a body that does not contain it"
        );
    }
}

/// RESTCONF failure bodies (`ietf-restconf:errors`, or anything a proxy sends) with a status.
pub fn restconf_errors(data: &[u8]) {
    let _ = errors::parse_errors(data);
    let code = 400 + u16::from(data.first().copied().unwrap_or_default()) % 200;
    let status = reqwest::StatusCode::from_u16(code).unwrap();
    let message = errors::describe(status, data);
    assert!(
        message.chars().count() <= MAX_MESSAGE_CHARS,
        "a {} byte body gave a {} character message",
        data.len(),
        message.chars().count()
    );
    let err = errors::from_status("http://odl:8181", "fuzz", status, data);
    assert!(err.to_string().chars().count() <= MAX_MESSAGE_CHARS + 200);
}

/// GoBGP's gRPC replies: the first byte picks the message, the rest is its protobuf encoding
/// (or, for a failure status, its code and message).
pub fn gobgp_reply(data: &[u8]) {
    let Some((&kind, rest)) = data.split_first() else {
        return;
    };
    let d = desired(rest.first().copied().unwrap_or_default());
    match kind % 4 {
        0 => {
            let Ok(reply) = proto::ListPeerResponse::decode(rest) else {
                return;
            };
            let Some(peer) = reply.peer else { return };
            let _ = convert::observed_peer(&peer);
            let _ = convert::peer_diff(&d, &peer);
            // What UpdatePeer gets, once applied, reads back without a difference (no write
            // in steady state, whatever GoBGP had before).
            let update = convert::updated_peer(&d, &peer);
            assert_eq!(convert::peer_diff(&d, &update), Vec::<&str>::new());
            assert_eq!(convert::neighbor_of(&update), Some(d.neighbor));
        }
        1 => {
            if let Ok(event) = proto::WatchEventResponse::decode(rest) {
                let _ = convert::events_from_watch(event);
            }
        }
        2 => {
            if let Ok(reply) = proto::GetBgpResponse::decode(rest) {
                let speaker = SpeakerConfig {
                    asn: 65001,
                    router_id: "192.0.2.1".parse().unwrap(),
                    listen_address: IpAddr::from([192, 0, 2, 1]),
                    listen_port: 1790,
                };
                let global = reply.global.unwrap_or_default();
                let conflict = convert::speaker_conflict(&global, &speaker);
                assert_eq!(
                    conflict.is_none(),
                    global.asn == 65001 && global.listen_port == 1790
                );
            }
        }
        _ => {
            let Some((&code, message)) = rest.split_first() else {
                return;
            };
            let status = tonic::Status::new(
                tonic::Code::from(i32::from(code % 20)),
                String::from_utf8_lossy(message),
            );
            let _ = convert::status_to_error("http://127.0.0.1:50051", "fuzz", &status).to_string();
        }
    }
}

/// A `clouds.yaml` and the name of the cloud to use: the first line is the name, the rest the file.
pub fn clouds_yaml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (name, yaml) = text.split_once('\n').unwrap_or(("", text));
    match clouds::parse(yaml, name) {
        Ok(cloud) => {
            assert_eq!(cloud.name, name);
            assert!(["public", "internal", "admin"].contains(&cloud.interface.as_str()));
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

/// `kubectl cellnet` arguments (NUL-separated), parsed and checked as the plugin does before it
/// connects to a cluster (clap, with the value parsers of `--timeout` and `--message`).
pub fn plugin_args(data: &[u8]) {
    let mut args = vec!["kubectl-cellnet".to_owned()];
    args.extend(
        data.split(|b| *b == 0)
            .take(24)
            .map(|a| String::from_utf8_lossy(a).into_owned()),
    );
    for arg in &args {
        let _ = plugin::parse_duration(arg);
    }
    match Cli::try_parse_from(&args) {
        Ok(cli) => {
            if let Command::Disable(disable) = &cli.command {
                assert!(
                    disable
                        .message
                        .as_ref()
                        .is_none_or(|m| m.len() <= plugin::MAX_ADMIN_MESSAGE)
                );
            }
        }
        Err(e) => {
            let _ = e.render().to_string();
        }
    }
}
