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
//! - steady state (SDN writes, status writes, SDN reads from the controller's own metrics), drift
//!   repair times, controller RSS and CPU, and RSS with many (suspended) objects present.
//!
//! The speakers run in one network namespace with TEST-NET-2 addresses on its `lo` where the
//! bench may make one (root): GoBGP drops paths with a 127/8 next hop, so on loopback addresses
//! sessions come up but carry no routes (then `--networks` is taken as 0).
//!
//! `make bench` runs the full size (`cargo bench --bench cellnet_bench`); `--quick` runs in
//! `make test` so the bench cannot rot. Figures are printed as a table and, with `--json FILE`,
//! written as JSON.
#[path = "cellnet_bench/routes.rs"]
mod routes;
#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use cellnet::api::CellInterconnect;
use cellnet::sdn::gobgp::{GoBgp, target};
use cellnet::sdn::{PeerConfig, SdnBackend, SessionState, SpeakerConfig};
use clap::Parser;
use futures::StreamExt as _;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt as _, watcher};
use serde_json::{Value, json};
use support::gobgp::Gobgpd;
use support::netns::SpeakerNet;
use support::{ControllerProcess, free_port, report};

const BGP_PORT: u16 = 1790;
const NS: &str = "bench";

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
    /// Extra argument for the controller, e.g. `--controller-arg=--concurrency=64` (repeatable).
    #[arg(long, allow_hyphen_values = true)]
    controller_arg: Vec<String>,
    /// Write the figures as JSON to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// The speakers' namespace, when the bench could make one.
static NET: OnceLock<Option<SpeakerNet>> = OnceLock::new();

fn speaker_net() -> Option<&'static SpeakerNet> {
    NET.get().and_then(Option::as_ref)
}

/// Speaker `i` of run `run`: in the namespace (both runs use the same addresses, one after the
/// other), else on 127.<run>.x.y.
fn speaker_addr(run: u8, i: u16) -> Ipv4Addr {
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

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn peer(local: Ipv4Addr, remote: Ipv4Addr, remote_as: u32, owner: &str) -> PeerConfig {
    PeerConfig {
        remote_port: BGP_PORT,
        hold_time: 9,
        keepalive_interval: 3,
        ..PeerConfig::new(IpAddr::V4(remote), remote_as, IpAddr::V4(local), owner)
    }
}

fn asn(i: u16) -> u32 {
    64512 + u32::from(i)
}

/// Starts `n` bare speakers for run `run` (second octet), in parallel.
fn start_speakers(run: u8, n: u16) -> Vec<Gobgpd> {
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

fn clients(speakers: &[Gobgpd]) -> Vec<Arc<GoBgp>> {
    speakers
        .iter()
        .map(|s| Arc::new(GoBgp::connect(&target(s.api_url()), Duration::from_secs(10)).expect("client")))
        .collect()
}

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

async fn peer_states(clients: &[Arc<GoBgp>]) -> Vec<HashMap<IpAddr, SessionState>> {
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

/// The floor: peers written straight into fresh speakers, until all Established; with
/// `networks`, each speaker's origination and filters written first, until every allowed
/// prefix is in every peer's table. Returns both times from the first write.
async fn floor(n: u16, pairs: &[(u16, u16)], networks: usize) -> (f64, Option<f64>) {
    let speakers = tokio::task::block_in_place(|| start_speakers(7, n));
    let clients = clients(&speakers);
    let began = Instant::now();
    futures::stream::iter(0..n)
        .map(|i| {
            let c = clients[usize::from(i)].clone();
            async move {
                let a = speaker_addr(7, i);
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
            let (a, b) = (speaker_addr(7, i), speaker_addr(7, j));
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
        peers[usize::from(i)].push((k, j, speaker_addr(7, j)));
        peers[usize::from(j)].push((k, i, speaker_addr(7, i)));
    }
    futures::stream::iter(0..clients.len())
        .map(|i| {
            let (c, peers) = (clients[i].clone(), &peers[i]);
            async move {
                let i = i as u16;
                routes::write_floor_routes(&c, i, speaker_addr(7, i), peers, networks).await;
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
}

fn endpoint_json(i: u16, speaker: &Gobgpd, networks: usize) -> Value {
    json!({
        "apiVersion": "cellnet.io/v1alpha1", "kind": "InfraEndpoint",
        "metadata": {"name": format!("ep-{i}"), "namespace": NS},
        "spec": {"cell": format!("cell{i}"), "address": speaker.address.to_string(), "asn": asn(i),
                 "port": BGP_PORT, "sdn": {"type": "GoBGP", "url": speaker.api_url()},
                 "networks": routes::networks_json(i, networks)}
    })
}

fn interconnect_json(name: &str, i: u16, j: u16, suspend: bool) -> Value {
    json!({
        "apiVersion": "cellnet.io/v1alpha1", "kind": "CellInterconnect",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"localEndpoint": {"name": format!("ep-{i}")}, "remoteEndpoint": {"name": format!("ep-{j}")},
                 "suspend": suspend, "bgp": {"holdTime": 9, "keepaliveInterval": 3}}
    })
}

async fn apply_all<K>(api: &Api<K>, objects: Vec<Value>)
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
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
}

/// Sums every sample of counter `name` in a Prometheus text exposition.
fn counter(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn scrape(port: u16) -> String {
    reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .expect("scrape /metrics")
        .text()
        .await
        .expect("metrics body")
}

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map(|kib| kib / 1024.0)
        .unwrap_or(0.0)
}

/// utime + stime of `pid` in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or_default();
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<f64>().ok())
        .sum();
    ticks / 100.0
}

/// Interconnects whose `Ready` condition is `True`, from the bench's own watch: a LIST of every
/// object every 250 ms cost the API server more than what it measured.
fn ready_count(cics: &Store<CellInterconnect>) -> usize {
    cics.state()
        .iter()
        .filter(|c| {
            c.status.as_ref().is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
            })
        })
        .count()
}

/// A cache of every interconnect, fed by a watch (what a controller would use).
fn watch_interconnects(api: &Api<CellInterconnect>) -> Store<CellInterconnect> {
    let (store, writer) = reflector::store();
    let events = watcher(api.clone(), watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .for_each(|_| std::future::ready(()));
    tokio::spawn(events);
    store
}

/// Write requests the API server has answered, by `resource[/subresource]` (its own metrics).
async fn api_writes(client: &kube::Client) -> HashMap<String, f64> {
    let req = http::Request::get("/metrics").body(Vec::new()).expect("request");
    let text = client.request_text(req).await.unwrap_or_default();
    let mut out = HashMap::new();
    for line in text.lines().filter(|l| l.starts_with("apiserver_request_total{")) {
        let label = |name: &str| {
            let key = format!("{name}=\"");
            let start = line.find(&key)? + key.len();
            Some(line[start..].split('"').next()?.to_string())
        };
        let verb = label("verb").unwrap_or_default();
        if !["POST", "PUT", "PATCH", "APPLY", "DELETE"].contains(&verb.as_str()) {
            continue;
        }
        let (resource, sub) = (
            label("resource").unwrap_or_default(),
            label("subresource").unwrap_or_default(),
        );
        let key = if sub.is_empty() {
            resource
        } else {
            format!("{resource}/{sub}")
        };
        let n: f64 = line
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        *out.entry(key).or_insert(0.0) += n;
    }
    out
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
    print_table(&args, &figures);
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
    let client = cp.client().await;
    support::namespace(cp, NS).await;

    // Routes need the speakers' namespace (non-loopback next hops).
    let networks = if speaker_net().is_some() { args.networks } else { 0 };
    let (floor_s, routes_floor_s) = floor(args.speakers, &pairs, networks).await;

    // cellnet: fresh speakers, the controller, everything applied at once.
    let speakers = tokio::task::block_in_place(|| start_speakers(8, args.speakers));
    let clients = clients(&speakers);
    let metrics_port = free_port();
    let bind = format!("127.0.0.1:{metrics_port}");
    let mut controller_args = vec![
        "--metrics-bind-address",
        &bind,
        "--health-probe-bind-address",
        "0",
    ];
    controller_args.extend(args.controller_arg.iter().map(String::as_str));
    let controller = tokio::task::block_in_place(|| ControllerProcess::start(cp, &controller_args));
    let pid = controller.pid().expect("controller pid");
    let eps: Api<cellnet::api::InfraEndpoint> = Api::namespaced(client.clone(), NS);
    let cics: Api<CellInterconnect> = Api::namespaced(client.clone(), NS);
    let watched = watch_interconnects(&cics);
    let writes_before = api_writes(&client).await;
    let applied = Instant::now();
    apply_all(
        &eps,
        speakers
            .iter()
            .enumerate()
            .map(|(i, s)| endpoint_json(i as u16, s, networks))
            .collect(),
    )
    .await;
    let names: Vec<String> = (0..pairs.len()).map(|k| format!("ic-{k}")).collect();
    apply_all(
        &cics,
        pairs
            .iter()
            .zip(&names)
            .map(|(&(i, j), n)| interconnect_json(n, i, j, false))
            .collect(),
    )
    .await;
    let apply_s = applied.elapsed().as_secs_f64();
    report(&format!(
        "{} objects applied in {apply_s:.1} s",
        speakers.len() + pairs.len(),
    ));

    // Push: until both peers of every interconnect exist on their speakers.
    let mut pushed: Vec<Option<f64>> = vec![None; pairs.len()];
    // Per speaker, the neighbours seen so far; a speaker that has all of its peers is not read
    // again (every speaker every 100 ms was 500 ListPeer/s, competing with what it measures).
    let mut want: Vec<usize> = vec![0; clients.len()];
    for &(i, j) in &pairs {
        want[usize::from(i)] += 1;
        want[usize::from(j)] += 1;
    }
    let mut seen: Vec<HashMap<IpAddr, SessionState>> = vec![HashMap::new(); clients.len()];
    while pushed.iter().any(Option::is_none) {
        assert!(
            applied.elapsed() < Duration::from_secs(900),
            "peers not pushed in 900 s"
        );
        let incomplete: Vec<usize> = (0..clients.len()).filter(|&i| seen[i].len() < want[i]).collect();
        let read = peer_states(&incomplete.iter().map(|&i| clients[i].clone()).collect::<Vec<_>>()).await;
        for (&i, states) in incomplete.iter().zip(read) {
            seen[i] = states;
        }
        let now = applied.elapsed().as_secs_f64();
        for (k, &(i, j)) in pairs.iter().enumerate() {
            let (a, b) = (speaker_addr(8, i), speaker_addr(8, j));
            let both = seen[usize::from(i)].contains_key(&IpAddr::V4(b))
                && seen[usize::from(j)].contains_key(&IpAddr::V4(a));
            if both && pushed[k].is_none() {
                pushed[k] = Some(now);
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let mut push: Vec<f64> = pushed.into_iter().flatten().collect();
    push.sort_by(f64::total_cmp);
    let push_s = *push.last().unwrap_or(&0.0);
    let push_after_apply_s = push_s - apply_s;
    report(&format!(
        "push: every peer on its speaker after {push_s:.1} s ({push_after_apply_s:.1} s after the apply returned)"
    ));

    // Ready: until every CellInterconnect is Ready; routes: until every allowed prefix is in
    // every peer's table (both counted from the start of the apply).
    let ready = async {
        loop {
            let ready = ready_count(&watched);
            if ready == pairs.len() {
                break;
            }
            assert!(
                applied.elapsed() < Duration::from_secs(900),
                "only {ready}/{} Ready after 900 s",
                pairs.len()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        applied.elapsed().as_secs_f64()
    };
    let raw = routes::raw_clients(&speakers.iter().map(Gobgpd::api_url).collect::<Vec<_>>());
    let want = routes::wanted(args.speakers, &pairs, networks);
    let routes = async {
        if networks == 0 {
            return None;
        }
        let timeout = Duration::from_secs(900);
        Some(routes::wait_all_routes(&raw, &want, applied, timeout).await)
    };
    let (ready_s, routes_s) = futures::join!(ready, routes);
    report(&format!("ready: all {} Ready after {ready_s:.1} s", pairs.len()));
    if let Some(routes_s) = routes_s {
        let prefixes: usize = want.iter().map(|w| w.len()).sum();
        report(&format!(
            "routes: {prefixes} prefixes in their peers' tables after {routes_s:.1} s"
        ));
    }
    let writes_after = api_writes(&client).await;
    let mut bring_up_writes: Vec<(String, f64)> = writes_after
        .iter()
        .map(|(k, v)| (k.clone(), v - writes_before.get(k).copied().unwrap_or(0.0)))
        .filter(|(_, v)| *v > 0.0)
        .collect();
    bring_up_writes.sort_by(|a, b| b.1.total_cmp(&a.1));
    let api_writes_total: f64 = bring_up_writes.iter().map(|(_, v)| v).sum();
    report(&format!(
        "API server writes from the apply until all Ready: {api_writes_total} ({})",
        bring_up_writes
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));

    // Steady state, counted from the controller's own metrics, once the re-checks scheduled
    // while sessions came up (10 s) have run.
    tokio::time::sleep(Duration::from_secs(15)).await;
    let (m1, cpu1, t1) = (scrape(metrics_port).await, cpu_seconds(pid), Instant::now());
    tokio::time::sleep(Duration::from_secs(args.steady_secs)).await;
    let (m2, cpu2) = (scrape(metrics_port).await, cpu_seconds(pid));
    let delta = |name: &str| counter(&m2, name) - counter(&m1, name);
    let steady_sdn_writes = delta("cellnet_sdn_writes_total");
    let steady_status_writes = delta("cellnet_status_writes_total");
    let steady_sdn_reads = delta("cellnet_sdn_api_calls_total");
    let cpu_percent = 100.0 * (cpu2 - cpu1) / t1.elapsed().as_secs_f64();
    let rss = rss_mib(pid);
    report(&format!(
        "steady: {steady_sdn_writes} SDN writes, {steady_status_writes} status writes, {steady_sdn_reads} SDN reads"
    ));

    // Drift: one peer at a time deleted behind cellnet's back, until it is back.
    let mut drift = Vec::new();
    for s in 0..args.drift_samples.min(pairs.len()) {
        let k = s * pairs.len() / args.drift_samples.max(1);
        let (i, j) = pairs[k];
        let (c, neighbor) = (&clients[usize::from(i)], IpAddr::V4(speaker_addr(8, j)));
        c.remove_peer(neighbor, &format!("cellnet:{NS}/{}", names[k]))
            .await
            .expect("delete peer");
        let t = Instant::now();
        loop {
            let present = c
                .list_peers()
                .await
                .map(|p| p.iter().any(|p| p.neighbor == neighbor))
                .unwrap_or(false);
            if present {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(120),
                "peer not repaired in 120 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        drift.push(t.elapsed().as_secs_f64());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    drift.sort_by(f64::total_cmp);
    report(&format!(
        "drift: {} repairs, p99 {:.2} s",
        drift.len(),
        percentile(&drift, 0.99)
    ));

    // Many objects: suspended extra interconnects (caches, not sessions).
    let extra = args.many_objects.saturating_sub(pairs.len());
    let many = Instant::now();
    apply_all(
        &cics,
        (0..extra)
            .map(|k| {
                let (i, j) = pairs[k % pairs.len()];
                interconnect_json(&format!("many-{k}"), i, j, true)
            })
            .collect(),
    )
    .await;
    // Let the controller see and reconcile them all (each gets status Suspended).
    loop {
        let suspended = watched
            .state()
            .iter()
            .filter(|c| c.spec.suspend)
            .filter(|c| {
                c.status
                    .as_ref()
                    .is_some_and(|s| s.conditions.iter().any(|c| c.reason == "Suspended"))
            })
            .count();
        if suspended >= extra {
            break;
        }
        assert!(
            many.elapsed() < Duration::from_secs(900),
            "{suspended}/{extra} suspended after 900 s"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let rss_many = rss_mib(pid);
    report(&format!(
        "{} objects present: controller RSS {rss_many:.1} MiB",
        args.many_objects
    ));

    // Remove everything (finalizers run against live speakers) so the control plane stops clean.
    let _ = cics
        .delete_collection(&Default::default(), &ListParams::default())
        .await;
    drop(controller);
    drop(speakers);
    json!({
        "speakers": args.speakers,
        "interconnects": pairs.len(),
        "apply_s": apply_s,
        "push_s": push_s,
        "push_after_apply_s": push_after_apply_s,
        "push_p50_s": percentile(&push, 0.5),
        "push_p99_s": percentile(&push, 0.99),
        "ready_s": ready_s,
        "floor_s": floor_s,
        "networks": networks,
        "routes_s": routes_s,
        "routes_floor_s": routes_floor_s,
        "routes_over_floor": routes_s.zip(routes_floor_s).map(|(r, f)| r / f),
        "ready_over_floor": ready_s / floor_s,
        "api_writes": api_writes_total,
        "api_writes_per_interconnect": api_writes_total / pairs.len() as f64,
        "api_writes_by_resource": bring_up_writes.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<String, Value>>(),
        "steady_secs": args.steady_secs,
        "steady_sdn_writes": steady_sdn_writes,
        "steady_status_writes": steady_status_writes,
        "steady_sdn_reads": steady_sdn_reads,
        "steady_sdn_reads_per_speaker": steady_sdn_reads / f64::from(args.speakers),
        "drift_samples": drift.len(),
        "drift_p50_s": percentile(&drift, 0.5),
        "drift_p99_s": percentile(&drift, 0.99),
        "rss_mib": rss,
        "cpu_percent": cpu_percent,
        "many_objects": args.many_objects,
        "rss_10k_mib": rss_many,
        "total_s": began.elapsed().as_secs_f64(),
    })
}

fn print_table(args: &Args, f: &Value) {
    println!();
    println!(
        "cellnet-bench: {} speakers, {} interconnects",
        args.speakers, f["interconnects"]
    );
    println!("{:<30} {:>12}", "figure", "value");
    for key in [
        "apply_s",
        "push_s",
        "push_after_apply_s",
        "push_p50_s",
        "push_p99_s",
        "ready_s",
        "floor_s",
        "ready_over_floor",
        "routes_s",
        "routes_floor_s",
        "routes_over_floor",
        "api_writes_per_interconnect",
        "steady_sdn_writes",
        "steady_status_writes",
        "steady_sdn_reads",
        "steady_sdn_reads_per_speaker",
        "drift_p50_s",
        "drift_p99_s",
        "rss_mib",
        "cpu_percent",
        "rss_10k_mib",
        "total_s",
    ] {
        println!("{key:<30} {:>12.2}", f[key].as_f64().unwrap_or(f64::NAN));
    }
}
