//! One round of cellnet: fresh speakers and a fresh namespace, the controller as a process,
//! every endpoint and interconnect applied at once; measured until every peer exists, every
//! object is Ready and every allowed prefix is in place.
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cellnet::api::{CellInterconnect, InfraEndpoint};
use cellnet::sdn::SessionState;
use cellnet::sdn::gobgp::GoBgp;
use kube::api::{Api, DeleteParams, ListParams};
use serde_json::{Value, json};

use crate::latency::{Times, Watched, percentile, waits};
use crate::speakers::{clients, peer_states, speaker_addr, start_speakers};
use crate::support::control_plane::ControlPlane;
use crate::support::gobgp::Gobgpd;
use crate::support::{ControllerProcess, free_port, report};
use crate::{apiserver, apply_all, endpoint_json, interconnect_json, routes};

/// cellnet's speakers are run 8 (127.8.x.y on loopback).
pub const RUN: u8 = 8;

/// What every round shares.
pub struct Setup<'a> {
    pub cp: &'static ControlPlane,
    pub client: kube::Client,
    pub speakers: u16,
    pub pairs: &'a [(u16, u16)],
    pub networks: usize,
    /// The controller's binary (`None`: this build's) and its extra arguments.
    pub controller_bin: Option<&'a std::path::Path>,
    pub controller_args: &'a [String],
}

/// What a round leaves running: the phases after the last round use it; [`remove`] ends it.
pub struct Live {
    pub ns: String,
    /// Held: the speakers run until the round is removed.
    pub _speakers: Vec<Gobgpd>,
    pub clients: Vec<Arc<GoBgp>>,
    pub controller: ControllerProcess,
    pub metrics_port: u16,
    pub watched: Watched,
    pub names: Vec<String>,
}

fn start_controller(s: &Setup<'_>, metrics_port: u16) -> ControllerProcess {
    let bind = format!("127.0.0.1:{metrics_port}");
    let mut args = vec![
        "--metrics-bind-address",
        &bind,
        "--health-probe-bind-address",
        "0",
    ];
    args.extend(s.controller_args.iter().map(String::as_str));
    match s.controller_bin {
        Some(bin) => ControllerProcess::start_binary(s.cp, bin, &args),
        None => ControllerProcess::start(s.cp, &args),
    }
}

/// Runs round `round` in namespace `bench-<round>`; returns its figures and what stays up.
pub async fn cellnet(s: &Setup<'_>, round: usize) -> (Value, Live) {
    let ns = format!("bench-{round}");
    crate::support::namespace(s.cp, &ns).await;
    let speakers = tokio::task::block_in_place(|| start_speakers(RUN, s.speakers));
    let clients = clients(&speakers);
    let eps: Api<InfraEndpoint> = Api::namespaced(s.client.clone(), &ns);
    let cics: Api<CellInterconnect> = Api::namespaced(s.client.clone(), &ns);
    // The bench's own watch is counted in the baseline, so the difference is the controller's.
    let outside = apiserver::watch_streams(&apiserver::scrape(&s.client).await);
    let watched = Watched::start(&cics).await;
    let watches_before = apiserver::one_more_watch(&s.client, &outside, "cellinterconnects").await;
    let open = |r: &str| watches_before.get(r).copied().unwrap_or(0.0);
    report(&format!(
        "watch streams open before the controller: cellinterconnects {} (the bench's), infraendpoints {}, secrets {} (the API server's own)",
        open("cellinterconnects"),
        open("infraendpoints"),
        open("secrets"),
    ));
    let metrics_port = free_port();
    let controller = tokio::task::block_in_place(|| start_controller(s, metrics_port));
    let writes_before = apiserver::writes(&apiserver::scrape(&s.client).await);

    let applied = Instant::now();
    let endpoints = speakers.iter().enumerate();
    let endpoints = endpoints.map(|(i, sp)| endpoint_json(&ns, i as u16, sp, s.networks));
    apply_all(&eps, endpoints.collect()).await;
    let names: Vec<String> = (0..s.pairs.len()).map(|k| format!("ic-{k}")).collect();
    let objects = s.pairs.iter().zip(&names);
    let objects = objects.map(|(&(i, j), n)| interconnect_json(&ns, n, i, j, false));
    let created = apply_all(&cics, objects.collect()).await;
    let apply_s = applied.elapsed().as_secs_f64();
    report(&format!(
        "{} objects applied in {apply_s:.1} s",
        speakers.len() + s.pairs.len(),
    ));

    let peer_at = wait_pushed(s.pairs, &names, &clients, applied).await;
    let push = waits(
        &HashMap::from_iter(names.iter().map(|n| (n.clone(), applied))),
        &peer_at,
    );
    let push_s = *push.last().unwrap_or(&0.0);
    let push_after_apply_s = push_s - apply_s;
    report(&format!(
        "push: every peer on its speaker after {push_s:.1} s ({push_after_apply_s:.1} s after the apply returned)"
    ));

    // Ready and routes, both counted from the start of the apply.
    let ready = wait_ready(&watched, s.pairs.len(), applied);
    let raw = routes::raw_clients(&speakers.iter().map(Gobgpd::api_url).collect::<Vec<_>>());
    let want = routes::wanted(s.speakers, s.pairs, s.networks);
    let routes = async {
        if s.networks == 0 {
            return None;
        }
        let timeout = Duration::from_secs(900);
        Some(routes::wait_all_routes(&raw, &want, applied, timeout).await)
    };
    let (ready_s, routes_s) = futures::join!(ready, routes);
    report(&format!(
        "ready: all {} Ready after {ready_s:.1} s",
        s.pairs.len()
    ));
    if let Some(routes_s) = routes_s {
        let prefixes: usize = want.iter().map(|w| w.len()).sum();
        report(&format!(
            "routes: {prefixes} prefixes in their peers' tables after {routes_s:.1} s"
        ));
    }
    let during = apiserver::scrape(&s.client).await;
    let writes = apiserver::delta(&apiserver::writes(&during), &writes_before);
    let api_writes: f64 = writes.values().filter_map(Value::as_f64).sum();
    report(&format!(
        "API server writes from the apply until all Ready: {api_writes} ({})",
        apiserver::describe(&writes)
    ));
    let watches = apiserver::delta(&apiserver::watch_streams(&during), &watches_before);
    report(&format!(
        "watch streams the controller holds: {}",
        apiserver::describe(&watches)
    ));

    let to_peer = waits(&created, &peer_at);
    let to_ready = waits(&created, &watched.ready_at());
    report(&format!(
        "per object: creation to peers p50 {:.1} s, p99 {:.1} s; to Ready p50 {:.1} s, p99 {:.1} s",
        percentile(&to_peer, 0.5),
        percentile(&to_peer, 0.99),
        percentile(&to_ready, 0.5),
        percentile(&to_ready, 0.99),
    ));
    let figures = json!({
        "round": round,
        "apply_s": apply_s,
        "push_s": push_s,
        "push_after_apply_s": push_after_apply_s,
        "push_p50_s": percentile(&push, 0.5),
        "push_p99_s": percentile(&push, 0.99),
        "ready_s": ready_s,
        "routes_s": routes_s,
        "create_to_peer_p50_s": percentile(&to_peer, 0.5),
        "create_to_peer_p99_s": percentile(&to_peer, 0.99),
        "create_to_ready_p50_s": percentile(&to_ready, 0.5),
        "create_to_ready_p99_s": percentile(&to_ready, 0.99),
        "api_writes": api_writes,
        "api_writes_per_interconnect": api_writes / s.pairs.len() as f64,
        "api_writes_by_resource": writes,
        "watch_streams_by_resource": watches,
    });
    let live = Live {
        ns,
        _speakers: speakers,
        clients,
        controller,
        metrics_port,
        watched,
        names,
    };
    (figures, live)
}

/// Until both peers of every interconnect exist on their speakers; when each was first seen.
async fn wait_pushed(
    pairs: &[(u16, u16)],
    names: &[String],
    clients: &[Arc<GoBgp>],
    applied: Instant,
) -> Times {
    let mut pushed = Times::new();
    // Per speaker, the neighbours seen so far; a speaker that has all of its peers is not read
    // again (every speaker every 100 ms was 500 ListPeer/s, competing with what it measures).
    let mut want: Vec<usize> = vec![0; clients.len()];
    for &(i, j) in pairs {
        want[usize::from(i)] += 1;
        want[usize::from(j)] += 1;
    }
    let mut seen: Vec<HashMap<IpAddr, SessionState>> = vec![HashMap::new(); clients.len()];
    while pushed.len() < pairs.len() {
        assert!(
            applied.elapsed() < Duration::from_secs(900),
            "peers not pushed in 900 s"
        );
        let incomplete: Vec<usize> = (0..clients.len()).filter(|&i| seen[i].len() < want[i]).collect();
        let read = peer_states(&incomplete.iter().map(|&i| clients[i].clone()).collect::<Vec<_>>()).await;
        for (&i, states) in incomplete.iter().zip(read) {
            seen[i] = states;
        }
        let now = Instant::now();
        for (&(i, j), name) in pairs.iter().zip(names) {
            let (a, b) = (speaker_addr(RUN, i), speaker_addr(RUN, j));
            let both = seen[usize::from(i)].contains_key(&IpAddr::V4(b))
                && seen[usize::from(j)].contains_key(&IpAddr::V4(a));
            if both {
                pushed.entry(name.clone()).or_insert(now);
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    pushed
}

/// Until every interconnect is Ready (from the bench's watch); seconds since `applied`.
async fn wait_ready(watched: &Watched, count: usize, applied: Instant) -> f64 {
    loop {
        let ready = watched.ready_count();
        if ready == count {
            return applied.elapsed().as_secs_f64();
        }
        assert!(
            applied.elapsed() < Duration::from_secs(900),
            "only {ready}/{count} Ready after 900 s"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Deletes the round's interconnects, then its endpoints (their finalizers run against the live
/// speakers), waits until they are gone, then stops the controller and the speakers: the next
/// round starts from the same API server state.
pub async fn remove(client: &kube::Client, live: Live) {
    let began = Instant::now();
    let cics: Api<CellInterconnect> = Api::namespaced(client.clone(), &live.ns);
    let eps: Api<InfraEndpoint> = Api::namespaced(client.clone(), &live.ns);
    delete_all(&cics).await;
    delete_all(&eps).await;
    drop(live);
    report(&format!(
        "round removed in {:.1} s",
        began.elapsed().as_secs_f64()
    ));
}

async fn delete_all<K>(api: &Api<K>)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let _ = api
        .delete_collection(&DeleteParams::default(), &ListParams::default())
        .await;
    let began = Instant::now();
    loop {
        let left = api.list(&ListParams::default().limit(1)).await;
        if left.is_ok_and(|l| l.items.is_empty()) {
            return;
        }
        assert!(
            began.elapsed() < Duration::from_secs(300),
            "objects of the round not deleted in 300 s"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
