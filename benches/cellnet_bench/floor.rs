//! The floor: the same peers (and, with networks, the same paths and policies) written straight
//! into fresh speakers through GoBGP's API by a minimal client (cellnet's GoBGP backend used
//! directly, no Kubernetes), until all are Established.
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cellnet::sdn::gobgp::GoBgp;
use cellnet::sdn::{PeerConfig, SdnBackend, SessionState, SpeakerConfig};
use futures::StreamExt as _;

use crate::routes;
use crate::speakers::{BGP_PORT, asn, clients, peer, peer_states, speaker_addr, start_speakers};
use crate::support::gobgp::Gobgpd;
use crate::support::report;

/// The floor's speakers are run 7 (127.7.x.y on loopback).
const RUN: u8 = 7;

/// Waits until every (speaker, neighbour) in `want` is Established; returns when it happened.
async fn wait_all_established(
    clients: &[Arc<GoBgp>],
    want: &[(usize, IpAddr)],
    timeout: Duration,
) -> Duration {
    let began = Instant::now();
    loop {
        let states = peer_states(clients).await;
        let missing = want
            .iter()
            .filter(|(i, n)| states[*i].get(n) != Some(&SessionState::Established))
            .count();
        if missing == 0 {
            return began.elapsed();
        }
        assert!(
            began.elapsed() < timeout,
            "{missing} sessions not Established after {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Peers written straight into fresh speakers, until all Established; with `networks`, each
/// speaker's origination and filters written first, until every allowed prefix is in every
/// peer's table. Returns both times from the first write.
pub async fn floor(n: u16, pairs: &[(u16, u16)], networks: usize) -> (f64, Option<f64>) {
    let speakers = tokio::task::block_in_place(|| start_speakers(RUN, n));
    let clients = clients(&speakers);
    let began = Instant::now();
    futures::stream::iter(0..n)
        .map(|i| {
            let c = clients[usize::from(i)].clone();
            async move {
                let a = speaker_addr(RUN, i);
                let cfg = SpeakerConfig {
                    asn: asn(i),
                    router_id: a,
                    listen_address: a.into(),
                    listen_port: BGP_PORT,
                };
                c.ensure_speaker(&cfg).await.expect("start bgp");
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    let mut want = Vec::new();
    let jobs: Vec<(usize, PeerConfig)> = pairs
        .iter()
        .flat_map(|&(i, j)| {
            let (a, b) = (speaker_addr(RUN, i), speaker_addr(RUN, j));
            want.push((usize::from(i), IpAddr::V4(b)));
            want.push((usize::from(j), IpAddr::V4(a)));
            [
                (usize::from(i), peer(a, b, asn(j), "floor")),
                (usize::from(j), peer(b, a, asn(i), "floor")),
            ]
        })
        .collect();
    let peers = futures::stream::iter(jobs)
        .map(|(i, p)| {
            let c = clients[i].clone();
            async move { c.ensure_peer(&p).await.expect("add peer") }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>();
    // Paths and filters before the peers: a filter written once a session is up narrows what
    // is sent, which only a hard reset takes back (30 s idle; 228 s to all Established at full
    // size when written beside the peers).
    floor_routes(&clients, pairs, networks).await;
    peers.await;
    wait_all_established(&clients, &want, Duration::from_secs(600)).await;
    let floor = began.elapsed().as_secs_f64();
    report(&format!(
        "floor: {} peers Established in {floor:.1} s",
        want.len()
    ));
    let routes = if networks > 0 {
        let raw = routes::raw_clients(&speakers.iter().map(Gobgpd::api_url).collect::<Vec<_>>());
        let want = routes::wanted(n, pairs, networks);
        let s = routes::wait_all_routes(&raw, &want, began, Duration::from_secs(600)).await;
        let prefixes: usize = want.iter().map(|w| w.len()).sum();
        report(&format!(
            "floor: {prefixes} prefixes in their peers' tables in {s:.1} s"
        ));
        Some(s)
    } else {
        None
    };
    drop(speakers);
    (floor, routes)
}

/// The floor's originations and filters, one speaker's at a time per task.
async fn floor_routes(clients: &[Arc<GoBgp>], pairs: &[(u16, u16)], networks: usize) {
    if networks == 0 {
        return;
    }
    let mut peers: Vec<Vec<(usize, u16, Ipv4Addr)>> = vec![Vec::new(); clients.len()];
    for (k, &(i, j)) in pairs.iter().enumerate() {
        peers[usize::from(i)].push((k, j, speaker_addr(RUN, j)));
        peers[usize::from(j)].push((k, i, speaker_addr(RUN, i)));
    }
    futures::stream::iter(0..clients.len())
        .map(|i| {
            let (c, peers) = (clients[i].clone(), &peers[i]);
            async move {
                let i = i as u16;
                routes::write_floor_routes(&c, i, speaker_addr(RUN, i), peers, networks).await;
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
}
