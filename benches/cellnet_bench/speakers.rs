//! The bench's gobgpd speakers: where they listen, starting them, reading their peers.
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use cellnet::sdn::gobgp::{GoBgp, target};
use cellnet::sdn::{PeerConfig, SdnBackend, SessionState};
use futures::StreamExt as _;

use crate::support::gobgp::Gobgpd;
use crate::support::netns::SpeakerNet;
use crate::support::report;

pub const BGP_PORT: u16 = 1790;

/// The speakers' namespace, when the bench could make one.
pub static NET: OnceLock<Option<SpeakerNet>> = OnceLock::new();

pub fn speaker_net() -> Option<&'static SpeakerNet> {
    NET.get().and_then(Option::as_ref)
}

/// Speaker `i` of run `run`: in the namespace (every run uses the same addresses, one after the
/// other), else on 127.<run>.x.y.
pub fn speaker_addr(run: u8, i: u16) -> Ipv4Addr {
    match speaker_net() {
        Some(net) => net.speaker_addr(i),
        None => Ipv4Addr::new(127, run, (i / 250) as u8, (i % 250 + 1) as u8),
    }
}

fn start_speaker(name: &str, address: Ipv4Addr) -> Gobgpd {
    match speaker_net() {
        Some(net) => Gobgpd::start_in_netns(name, &net.netns, net.api_host, address),
        None => Gobgpd::start(name, address, None),
    }
}

pub fn peer(local: Ipv4Addr, remote: Ipv4Addr, remote_as: u32, owner: &str) -> PeerConfig {
    PeerConfig {
        remote_port: BGP_PORT,
        hold_time: 9,
        keepalive_interval: 3,
        ..PeerConfig::new(IpAddr::V4(remote), remote_as, IpAddr::V4(local), owner)
    }
}

pub fn asn(i: u16) -> u32 {
    64512 + u32::from(i)
}

/// Starts `n` bare speakers for run `run` (second octet), in parallel.
pub fn start_speakers(run: u8, n: u16) -> Vec<Gobgpd> {
    let began = Instant::now();
    let speakers: Vec<Gobgpd> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|i| s.spawn(move || start_speaker(&format!("s{run}-{i}"), speaker_addr(run, i))))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("speaker start"))
            .collect()
    });
    report(&format!(
        "{n} gobgpd started in {:.1} s",
        began.elapsed().as_secs_f64()
    ));
    speakers
}

pub fn clients(speakers: &[Gobgpd]) -> Vec<Arc<GoBgp>> {
    speakers
        .iter()
        .map(|s| Arc::new(GoBgp::connect(&target(s.api_url()), Duration::from_secs(10)).expect("client")))
        .collect()
}

/// Every speaker's neighbours and their sessions (empty for a speaker that cannot be read now).
pub async fn peer_states(clients: &[Arc<GoBgp>]) -> Vec<HashMap<IpAddr, SessionState>> {
    futures::stream::iter(clients.iter().cloned())
        .map(|c| async move {
            c.list_peers()
                .await
                .map(|peers| peers.into_iter().map(|p| (p.neighbor, p.session)).collect())
                .unwrap_or_default()
        })
        .buffered(16)
        .collect()
        .await
}
