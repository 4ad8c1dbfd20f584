//! The speaker's global config (`StartBgp`, `GetBgp`).
use crate::sdn::SpeakerConfig;
use crate::sdn::gobgp::proto;

/// The `Global` that `StartBgp` gets for a speaker.
pub fn global_from_speaker(config: &SpeakerConfig) -> proto::Global {
    proto::Global {
        asn: config.asn,
        router_id: config.router_id.to_string(),
        listen_port: i32::from(config.listen_port),
        listen_addresses: vec![config.listen_address.to_string()],
        ..Default::default()
    }
}

/// Why a running speaker's global config disagrees with ours, naming both values; `None` if it
/// agrees on the AS and the listen port (the only settings GoBGP cannot change without a restart).
pub fn speaker_conflict(running: &proto::Global, desired: &SpeakerConfig) -> Option<String> {
    let mut reasons = Vec::new();
    if running.asn != desired.asn {
        reasons.push(format!(
            "it runs AS {} but AS {} is wanted",
            running.asn, desired.asn
        ));
    }
    if running.listen_port != i32::from(desired.listen_port) {
        reasons.push(format!(
            "it listens on port {} but port {} is wanted",
            running.listen_port, desired.listen_port
        ));
    }
    (!reasons.is_empty()).then(|| format!("the speaker already has a global config: {}", reasons.join("; ")))
}
