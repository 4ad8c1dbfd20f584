//! `cellnet-bench`: cellnet against the BGP floor on real processes.
//!
//! Starts the real control plane, `--speakers` real gobgpd processes on 127.0.x.y with one shared
//! BGP port, and measures:
//! - the floor: the same peers written straight into fresh speakers through GoBGP's API by a
//!   minimal client (cellnet's GoBGP backend used directly, no Kubernetes), until all are
//!   Established;
//! - cellnet: the release controller as a real process, `--interconnects` CellInterconnects
//!   applied at once; time until every peer exists (push) and until every object is Ready;
//! - routes: each endpoint declares `--networks` networks; time until every allowed prefix is in
//!   every peer's table, for cellnet and for the floor (the same paths and policies written
//!   straight into GoBGP with cellnet's client);
//! - per object: from each interconnect's creation to its peers and to Ready (p50, p99);
//! - from the API server's own metrics: its writes per interconnect during the bulk apply and
//!   the watch streams the controller holds per resource;
//! - steady state (SDN writes, status writes, SDN reads from the controller's own metrics), drift
//!   repair times, controller RSS and CPU, and RSS with many (suspended) objects present.
//!
//! With `--repeat N` the floor and cellnet phases run N times, interleaved, each with fresh
//! speakers and cellnet's in a fresh namespace (the previous round's objects deleted first, and
//! a fresh controller); the figures are the medians, with min and max in `spread`, and
//! `ready_over_floor` is the ratio of the medians. The phases after bring-up run once, after the
//! last round. `--controller-bin` runs another build of the controller (e.g. main's) under the
//! same bench.
//!
//! The speakers run in one network namespace with TEST-NET-2 addresses on its `lo` where the
//! bench may make one (root): GoBGP drops paths with a 127/8 next hop, so on loopback addresses
//! sessions come up but carry no routes (then `--networks` is taken as 0).
//!
//! `make bench` runs the full size (`cargo bench --bench cellnet_bench`); `--quick` runs in
//! `make test` so the bench cannot rot. Figures are printed as a table and, with `--json FILE`,
//! written as JSON.
#[path = "cellnet_bench/apiserver.rs"]
mod apiserver;
#[path = "cellnet_bench/floor.rs"]
mod floor;
#[path = "cellnet_bench/latency.rs"]
mod latency;
#[path = "cellnet_bench/once.rs"]
mod once;
#[path = "cellnet_bench/round.rs"]
mod round;
#[path = "cellnet_bench/routes.rs"]
mod routes;
#[path = "cellnet_bench/speakers.rs"]
mod speakers;
#[path = "cellnet_bench/summary.rs"]
mod summary;
#[path = "../tests/support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use futures::StreamExt as _;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::{Map, Value, json};
use support::gobgp::Gobgpd;
use support::netns::SpeakerNet;
use support::report;

use crate::latency::Times;
use crate::speakers::{BGP_PORT, NET, asn, speaker_net};

#[derive(Parser, Debug)]
#[command(
    name = "cellnet-bench",
    about = "cellnet against the BGP floor on real processes"
)]
struct Args {
    /// Real gobgpd processes (managed speakers).
    #[arg(long, default_value_t = 50)]
    speakers: u16,
    /// CellInterconnects between distinct pairs of speakers.
    #[arg(long, default_value_t = 1000)]
    interconnects: usize,
    /// Rounds of the floor and cellnet phases, interleaved; figures are their medians.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    repeat: u16,
    /// Seconds of steady state over which writes and reads are counted.
    #[arg(long, default_value_t = 60)]
    steady_secs: u64,
    /// Peers deleted behind cellnet's back, one at a time.
    #[arg(long, default_value_t = 20)]
    drift_samples: usize,
    /// Networks each endpoint declares (0: no routes phase).
    #[arg(long, default_value_t = 4)]
    networks: usize,
    /// Objects present when `rss_10k_mib` is measured (the extra ones are suspended).
    #[arg(long, default_value_t = 10_000)]
    many_objects: usize,
    /// The small size for `make test`: 10 speakers, 40 interconnects, short phases.
    #[arg(long)]
    quick: bool,
    /// The controller binary to run (default: the one cargo built with this bench).
    #[arg(long)]
    controller_bin: Option<PathBuf>,
    /// Extra argument for the controller, e.g. `--controller-arg=--concurrency=64` (repeatable).
    #[arg(long, allow_hyphen_values = true)]
    controller_arg: Vec<String>,
    /// Write the figures as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// Distinct pairs spread evenly over the speakers (neighbours at distance 1, then 2, ...).
fn pairs(speakers: u16, count: usize) -> Vec<(u16, u16)> {
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for d in 1..speakers {
        for i in 0..speakers {
            let j = (i + d) % speakers;
            let p = (i.min(j), i.max(j));
            if seen.insert(p) {
                out.push(p);
                if out.len() == count {
                    return out;
                }
            }
        }
    }
    assert!(
        out.len() == count,
        "{speakers} speakers give only {} distinct pairs",
        out.len()
    );
    out
}

fn endpoint_json(ns: &str, i: u16, speaker: &Gobgpd, networks: usize) -> Value {
    json!({
        "apiVersion": "cellnet.io/v1alpha1", "kind": "InfraEndpoint",
        "metadata": {"name": format!("ep-{i}"), "namespace": ns},
        "spec": {"cell": format!("cell{i}"), "address": speaker.address.to_string(), "asn": asn(i),
                 "port": BGP_PORT, "sdn": {"type": "GoBGP", "url": speaker.api_url()},
                 "networks": routes::networks_json(i, networks)}
    })
}

fn interconnect_json(ns: &str, name: &str, i: u16, j: u16, suspend: bool) -> Value {
    json!({
        "apiVersion": "cellnet.io/v1alpha1", "kind": "CellInterconnect",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"localEndpoint": {"name": format!("ep-{i}")}, "remoteEndpoint": {"name": format!("ep-{j}")},
                 "suspend": suspend, "bgp": {"holdTime": 9, "keepaliveInterval": 3}}
    })
}

/// Server-side applies `objects`, 32 at a time; returns when the API server answered each (by
/// name): the object exists from then.
async fn apply_all<K>(api: &Api<K>, objects: Vec<Value>) -> Times
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let params = PatchParams::apply("cellnet-bench").force();
    futures::stream::iter(objects)
        .map(|o| {
            let params = params.clone();
            async move {
                let name = o["metadata"]["name"].as_str().unwrap().to_string();
                api.patch(&name, &params, &Patch::Apply(&o)).await.expect("apply");
                (name, Instant::now())
            }
        })
        .buffer_unordered(32)
        .collect()
        .await
}

fn main() {
    let mut args = Args::parse();
    if args.quick {
        args.speakers = 10;
        args.interconnects = 40;
        args.steady_secs = 10;
        args.drift_samples = 5;
        args.many_objects = 400;
    }
    cellnet::tls::install_crypto_provider();
    let net = match support::netns::unavailable() {
        None => {
            let net = SpeakerNet::create();
            net.add_speakers(args.speakers);
            Some(net)
        }
        Some(why) => {
            report(&format!("speakers on loopback, no routes phase: {why}"));
            None
        }
    };
    NET.set(net).expect("set once");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let figures = rt.block_on(run(&args));
    drop(rt);
    if let Some(net) = speaker_net() {
        net.remove();
    }
    summary::print_table(args.speakers, &figures);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&figures).unwrap()).expect("write json");
        report(&format!("figures written to {}", path.display()));
    }
}

async fn run(args: &Args) -> Value {
    let began = Instant::now();
    let pairs = pairs(args.speakers, args.interconnects);
    let cp = tokio::task::block_in_place(support::control_plane);
    cp.install_crds();
    // Routes need the speakers' namespace (non-loopback next hops).
    let networks = if speaker_net().is_some() { args.networks } else { 0 };
    let setup = round::Setup {
        cp,
        client: cp.client().await,
        speakers: args.speakers,
        pairs: &pairs,
        networks,
        controller_bin: args.controller_bin.as_deref(),
        controller_args: &args.controller_arg,
    };
    let mut rounds = Vec::new();
    let mut live = None;
    for r in 0..usize::from(args.repeat) {
        if let Some(previous) = live.take() {
            round::remove(&setup.client, previous).await;
        }
        report(&format!("round {} of {}", r + 1, args.repeat));
        let (floor_s, routes_floor_s) = floor::floor(args.speakers, &pairs, networks).await;
        let (mut figures, l) = round::cellnet(&setup, r).await;
        let ready_s = figures["ready_s"].as_f64().unwrap_or(f64::NAN);
        figures["floor_s"] = json!(floor_s);
        figures["routes_floor_s"] = json!(routes_floor_s);
        figures["ready_over_floor"] = json!(ready_s / floor_s);
        rounds.push(figures);
        live = Some(l);
    }
    let live = live.expect("at least one round");

    let mut out = Map::new();
    out.extend(once::steady(&live, args.steady_secs, args.speakers).await);
    out.extend(once::drift(&live, &pairs, args.drift_samples).await);
    out.extend(once::many(&live, &setup.client, &pairs, args.many_objects).await);
    // Remove everything (finalizers run against live speakers) so the control plane stops clean.
    let cics: Api<cellnet::api::CellInterconnect> = Api::namespaced(setup.client.clone(), &live.ns);
    let _ = cics
        .delete_collection(&Default::default(), &ListParams::default())
        .await;
    drop(live);

    summary::summarize(&rounds, &mut out);
    out.insert("speakers".into(), json!(args.speakers));
    out.insert("interconnects".into(), json!(pairs.len()));
    out.insert("networks".into(), json!(networks));
    out.insert("repeat".into(), json!(args.repeat));
    out.insert("total_s".into(), json!(began.elapsed().as_secs_f64()));
    Value::Object(out)
}
