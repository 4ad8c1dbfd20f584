//! Faults 4 and 5 of issue 11, on real processes: kube-apiserver and etcd restarted while 100
//! CellInterconnects reconcile, and the controller SIGKILLed at five points of a 100-interconnect
//! apply (right after it, at a quarter, half and 80 % of the peers, once every peer exists) and,
//! three more during the deletion.
//!
//! Each test has 15 real gobgpd on 127.0.6.x (15 speakers give 105 distinct pairs; 100 are used,
//! both sides managed, so 200 peers), the real controller and this binary's own control plane.
//! The tests run one after the other (a lock): one restarts the control plane, and two
//! controllers must never reconcile the same cluster at once.
//!
//! What is asserted on every speaker, through GoBGP's own CLI: its neighbours are exactly the
//! desired ones (each once, with cellnet's marker naming the right interconnect) plus the peers
//! added by hand, which stay untouched; every CellInterconnect is Ready; after deleting, no object
//! is left with a finalizer and no cellnet peer is left. While waiting, the speakers are polled
//! through their gRPC API (cheaper than one CLI process per speaker per poll). The kill moments
//! get 0-100 ms of random delay; the seed is printed (`CELLNET_FAULT_SEED` replays it).
//! `CELLNET_KEEP_LOGS=1` keeps the controller's and the control plane's logs in the temp dir
//! (they are kept anyway when a test fails).
mod support;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cellnet::api::{CellInterconnect, InfraEndpoint};
use cellnet::sdn::SdnBackend as _;
use cellnet::sdn::gobgp::{GoBgp, target};
use futures::StreamExt as _;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use serde_json::Value;
use support::gobgp::Gobgpd;
use support::{ControlPlane, ControllerProcess, condition, manifests, report, wait_for};

const SPEAKERS: usize = 15;
const INTERCONNECTS: usize = 100;
/// From the apply (or a fault) until every peer is on its speaker.
const PUSH_TIMEOUT: Duration = Duration::from_secs(90);
/// Until every interconnect is Ready (sessions need GoBGP's connect retry, 6-9 s, on 2 busy cores).
const READY_TIMEOUT: Duration = Duration::from_secs(150);
/// Until deleted objects are gone (finalizers run against live speakers). After the control
/// plane restart the endpoints took 47-59 s (the controller's watches back off after `410 Gone`).
const DELETE_TIMEOUT: Duration = Duration::from_secs(120);

/// One test at a time: see the module docs.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn block<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

fn env() -> &'static ControlPlane {
    let cp = block(support::control_plane);
    block(|| cp.install_crds());
    cp
}

/// A peer a test adds by hand before cellnet runs; it must survive everything untouched.
struct HandPeer {
    speaker: usize,
    neighbor: Ipv4Addr,
    asn: u32,
    /// Its `conf` as GoBGP reported it right after it was added.
    conf: Value,
}

/// 15 speakers, their endpoints and 100 interconnects between distinct pairs.
struct Fleet {
    ns: &'static str,
    /// Speaker `i` is 127.0.6.(base + i + 1).
    base: u8,
    speakers: Vec<Gobgpd>,
    clients: Vec<GoBgp>,
    pairs: Vec<(usize, usize)>,
    hand: Vec<HandPeer>,
}

impl Fleet {
    async fn start(cp: &ControlPlane, ns: &'static str, base: u8) -> Fleet {
        support::namespace(cp, ns).await;
        let began = Instant::now();
        let speakers: Vec<Gobgpd> = block(|| {
            std::thread::scope(|s| {
                let handles: Vec<_> = (0..SPEAKERS)
                    .map(|i| s.spawn(move || Gobgpd::start(&format!("{ns}-{i}"), addr(base, i), None)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().expect("start gobgpd"))
                    .collect()
            })
        });
        report(&format!(
            "{ns}: {SPEAKERS} gobgpd started in {:.1} s",
            began.elapsed().as_secs_f64()
        ));
        let clients = speakers
            .iter()
            .map(|s| GoBgp::connect(&target(s.api_url()), Duration::from_secs(5)).expect("gRPC client"))
            .collect();
        Fleet {
            ns,
            base,
            speakers,
            clients,
            pairs: pairs(SPEAKERS, INTERCONNECTS),
            hand: Vec::new(),
        }
    }

    fn addr(&self, i: usize) -> Ipv4Addr {
        addr(self.base, i)
    }

    /// Starts BGP on speaker `i` by hand (the same AS and listen port as its endpoint, so cellnet
    /// accepts it) and adds a neighbour `neighbor` that cellnet does not own.
    fn add_hand_peer(&mut self, i: usize, neighbor: Ipv4Addr, asn: u32) {
        let s = &self.speakers[i];
        let a = self.addr(i).to_string();
        let (as_, port) = (endpoint_asn(i).to_string(), manifests::BGP_PORT.to_string());
        s.cli(&[
            "global",
            "as",
            &as_,
            "router-id",
            &a,
            "listen-port",
            &port,
            "listen-addresses",
            &a,
        ])
        .expect("start BGP by hand");
        s.neighbor_add_by_hand(IpAddr::V4(neighbor), asn);
        let conf = s
            .neighbor_json(IpAddr::V4(neighbor))
            .expect("the peer added by hand")["conf"]
            .clone();
        self.hand.push(HandPeer {
            speaker: i,
            neighbor,
            asn,
            conf,
        });
    }

    /// Every endpoint and interconnect as one YAML stream.
    fn manifests(&self) -> String {
        let endpoints = self.speakers.iter().enumerate().map(|(i, s)| {
            manifests::endpoint(&format!("ep-{i}"))
                .cell(&format!("cell{i}"))
                .address(self.addr(i))
                .asn(endpoint_asn(i))
                .port(manifests::BGP_PORT)
                .gobgp(&s.api_url())
                .yaml()
        });
        let interconnects = self.pairs.iter().enumerate().map(|(k, (i, j))| {
            manifests::interconnect(&format!("ic-{k}"), &format!("ep-{i}"), &format!("ep-{j}")).yaml()
        });
        endpoints.chain(interconnects).collect::<Vec<_>>().join("---\n")
    }

    /// Per speaker: neighbour -> description, for the interconnects in `present` (all, or none
    /// once they are deleted), plus the peers added by hand (no description).
    fn desired(&self, with_interconnects: bool) -> Vec<BTreeMap<IpAddr, String>> {
        let mut want = vec![BTreeMap::new(); SPEAKERS];
        if with_interconnects {
            for (k, &(i, j)) in self.pairs.iter().enumerate() {
                let owner = format!("cellnet:{}/ic-{k}", self.ns);
                want[i].insert(IpAddr::V4(self.addr(j)), owner.clone());
                want[j].insert(IpAddr::V4(self.addr(i)), owner);
            }
        }
        for h in &self.hand {
            want[h.speaker].insert(IpAddr::V4(h.neighbor), String::new());
        }
        want
    }

    /// Every speaker's peers as (neighbour, description) through the gRPC API; a speaker that
    /// does not answer gives `None`.
    async fn peers_api(&self) -> Vec<Option<Vec<(IpAddr, String)>>> {
        futures::future::join_all(self.clients.iter().map(|c| async move {
            c.list_peers().await.ok().map(|peers| {
                peers
                    .into_iter()
                    .map(|p| (p.neighbor, p.owner.unwrap_or_default()))
                    .collect()
            })
        }))
        .await
    }

    /// Peers carrying cellnet's marker, over all speakers.
    async fn cellnet_peers(&self) -> usize {
        self.peers_api()
            .await
            .iter()
            .flatten()
            .flatten()
            .filter(|(_, d)| d.starts_with("cellnet:"))
            .count()
    }

    /// Every speaker's peers as (neighbour, description) through GoBGP's own CLI.
    fn peers_cli(&self) -> Vec<Option<Vec<(IpAddr, String)>>> {
        std::thread::scope(|s| {
            let handles: Vec<_> = self
                .speakers
                .iter()
                .map(|sp| {
                    s.spawn(move || {
                        let out = sp.cli(&["neighbor", "-j"]).ok()?;
                        let json: Value = serde_json::from_str(out.trim()).ok()?;
                        let peers = json.as_array().cloned().unwrap_or_default();
                        peers
                            .iter()
                            .map(|p| {
                                let n = p["conf"]["neighbor_address"].as_str()?.parse().ok()?;
                                let d = p["conf"]["description"].as_str().unwrap_or_default();
                                Some((n, d.to_string()))
                            })
                            .collect::<Option<Vec<_>>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("gobgp cli"))
                .collect()
        })
    }

    /// What differs between `observed` and the desired state: missing, extra, duplicated or
    /// mislabelled peers, unreadable speakers. Empty when they are equal.
    fn diff(&self, observed: &[Option<Vec<(IpAddr, String)>>], with_interconnects: bool) -> Vec<String> {
        let want = self.desired(with_interconnects);
        let mut problems = Vec::new();
        for (i, (seen, want)) in observed.iter().zip(&want).enumerate() {
            let name = format!("speaker {i} ({})", self.addr(i));
            let Some(seen) = seen else {
                problems.push(format!("{name}: cannot list its peers"));
                continue;
            };
            let mut got: BTreeMap<IpAddr, Vec<&str>> = BTreeMap::new();
            for (n, d) in seen {
                got.entry(*n).or_default().push(d);
            }
            for (n, ds) in &got {
                match want.get(n) {
                    _ if ds.len() > 1 => {
                        problems.push(format!("{name}: {n} listed {} times: {ds:?}", ds.len()))
                    }
                    None => problems.push(format!("{name}: extra peer {n} ({:?})", ds[0])),
                    Some(w) if w != ds[0] => problems.push(format!(
                        "{name}: peer {n} has description {:?}, want {w:?}",
                        ds[0]
                    )),
                    Some(_) => {}
                }
            }
            for (n, w) in want {
                if !got.contains_key(n) {
                    problems.push(format!("{name}: missing peer {n} ({w:?})"));
                }
            }
        }
        problems
    }

    /// Polls the speakers' API until their peers equal the desired state; returns how long it took.
    async fn wait_exact(
        &self,
        with_interconnects: bool,
        timeout: Duration,
        controller: &ControllerProcess,
    ) -> Duration {
        let began = Instant::now();
        loop {
            let problems = self.diff(&self.peers_api().await, with_interconnects);
            if problems.is_empty() {
                return began.elapsed();
            }
            if began.elapsed() > timeout {
                panic!(
                    "speakers not in the desired state after {timeout:?}: {} problems:\n{}\n{}",
                    problems.len(),
                    problems.join("\n"),
                    log_excerpt(controller, &problems)
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Polls until at least `n` cellnet peers exist (or at most `n` with `at_most`); returns the
    /// count seen and how long it took.
    async fn wait_count(&self, n: usize, at_most: bool, timeout: Duration) -> (usize, Duration) {
        let began = Instant::now();
        loop {
            let count = self.cellnet_peers().await;
            if (at_most && count <= n) || (!at_most && count >= n) {
                return (count, began.elapsed());
            }
            assert!(
                began.elapsed() < timeout,
                "{}: {count} cellnet peers after {timeout:?}, waiting for {} {n}",
                self.ns,
                if at_most { "at most" } else { "at least" }
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The final check through GoBGP's CLI: exactly the desired peers, the hand-made ones with
    /// the configuration they had before the test.
    fn assert_exact(&self, with_interconnects: bool, controller: &ControllerProcess) {
        let problems = self.diff(&self.peers_cli(), with_interconnects);
        assert!(
            problems.is_empty(),
            "{}: speakers differ from the desired state ({} problems):\n{}\n{}",
            self.ns,
            problems.len(),
            problems.join("\n"),
            log_excerpt(controller, &problems)
        );
        for h in &self.hand {
            let now = self.speakers[h.speaker]
                .neighbor_json(IpAddr::V4(h.neighbor))
                .unwrap_or_else(|| panic!("hand-made peer {} is gone", h.neighbor));
            assert_eq!(
                now["conf"], h.conf,
                "hand-made peer {} (AS {}) on speaker {} was changed",
                h.neighbor, h.asn, h.speaker
            );
        }
    }
}

fn addr(base: u8, i: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 6, base + i as u8 + 1)
}

fn endpoint_asn(i: usize) -> u32 {
    65600 + i as u32
}

/// Distinct unordered pairs spread over the speakers (distance 1, then 2, ...), as the bench makes them.
fn pairs(speakers: usize, count: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for d in 1..speakers {
        for i in 0..speakers {
            let j = (i + d) % speakers;
            let p = (i.min(j), i.max(j));
            if !out.contains(&p) {
                out.push(p);
            }
            if out.len() == count {
                return out;
            }
        }
    }
    panic!("{speakers} speakers give only {} distinct pairs", out.len());
}

/// Controller log lines that name an address from `problems` (the last 40), for failure messages.
fn log_excerpt(controller: &ControllerProcess, problems: &[String]) -> String {
    let addrs: Vec<&str> = problems
        .iter()
        .flat_map(|p| p.split([' ', '(', ')', ':']))
        .filter(|w| w.starts_with("127.0.6."))
        .collect();
    let log = controller.log();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| addrs.iter().any(|a| l.contains(a)) || l.contains("ERROR") || l.contains("panicked"))
        .collect();
    format!(
        "--- controller log lines naming those peers, errors ({} lines, last 40; full log {}):\n{}",
        lines.len(),
        controller.log_path().display(),
        lines[lines.len().saturating_sub(40)..].join("\n")
    )
}

/// Applies the YAML stream (server-side apply, 16 at a time, endpoints before interconnects so no
/// interconnect waits for its endpoints): 115 objects in a second or two, where `kubectl apply`
/// takes 15 s and the controller would be done before the apply.
async fn apply_fast(cp: &ControlPlane, ns: &str, yaml: &str) -> Duration {
    let began = Instant::now();
    let client = cp.client().await;
    let docs: Vec<Value> = serde_yaml::Deserializer::from_str(yaml)
        .map(|d| serde::Deserialize::deserialize(d).expect("YAML from the builders"))
        .collect();
    let (endpoints, interconnects): (Vec<Value>, Vec<Value>) =
        docs.into_iter().partition(|d| d["kind"] == "InfraEndpoint");
    apply_each(&Api::<InfraEndpoint>::namespaced(client.clone(), ns), endpoints).await;
    apply_each(&Api::<CellInterconnect>::namespaced(client, ns), interconnects).await;
    began.elapsed()
}

async fn apply_each<K>(api: &Api<K>, objects: Vec<Value>)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let params = PatchParams::apply("faults-restart-test").force();
    futures::stream::iter(objects)
        .map(|o| {
            let params = params.clone();
            async move {
                let name = o["metadata"]["name"].as_str().expect("a name").to_string();
                api.patch(&name, &params, &Patch::Apply(&o))
                    .await
                    .unwrap_or_else(|e| panic!("apply {name}: {e}"));
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
}

/// Deletes every interconnect of `ns` with one request (all get their deletion timestamp at once).
async fn delete_interconnects(cp: &ControlPlane, ns: &str) {
    let api = Api::<CellInterconnect>::namespaced(cp.client().await, ns);
    api.delete_collection(&DeleteParams::default(), &ListParams::default())
        .await
        .expect("delete every interconnect");
}

/// Keeps the controller's and kube-apiserver's logs when the test fails (or with
/// `CELLNET_KEEP_LOGS=1`): both live in temp dirs that go away with the test.
struct KeepLogs {
    cp: &'static ControlPlane,
    ns: &'static str,
    files: Vec<(&'static str, PathBuf)>,
}

impl Drop for KeepLogs {
    fn drop(&mut self) {
        if !std::thread::panicking() && std::env::var_os("CELLNET_KEEP_LOGS").is_none() {
            return;
        }
        let keep = |what: &str| std::env::temp_dir().join(format!("faults_restart-{}-{what}.log", self.ns));
        for (what, from) in &self.files {
            if std::fs::copy(from, keep(what)).is_ok() {
                report(&format!(
                    "{}: {what} log kept at {}",
                    self.ns,
                    keep(what).display()
                ));
            }
        }
        // The Events outlive the deleted objects: they tell what each reconcile did.
        let (_, events, _) = self
            .cp
            .kubectl_run(&["get", "events", "-n", self.ns, "--request-timeout=10s"]);
        if std::fs::write(keep("events"), events).is_ok() {
            report(&format!(
                "{}: events kept at {}",
                self.ns,
                keep("events").display()
            ));
        }
    }
}

fn keep_logs(cp: &'static ControlPlane, ns: &'static str, controller: &ControllerProcess) -> KeepLogs {
    KeepLogs {
        cp,
        ns,
        files: vec![
            ("controller", controller.log_path().to_path_buf()),
            ("kube-apiserver", cp.dir.join("kube-apiserver.log")),
            ("etcd", cp.dir.join("etcd.log")),
        ],
    }
}

/// (Ready, total) CellInterconnects in `ns`, or `None` if the API does not answer.
fn ready_count(cp: &ControlPlane, ns: &str) -> Option<(usize, usize)> {
    ready_and_not(cp, ns).map(|(counts, _)| counts)
}

/// (ready, total), and the first few interconnects that are not Ready with their Ready reason
/// and message, so a failed wait names them.
fn ready_and_not(cp: &ControlPlane, ns: &str) -> Option<((usize, usize), Vec<String>)> {
    let (ok, out, _) = cp.kubectl_run(&["get", "cic", "-n", ns, "-o", "json", "--request-timeout=5s"]);
    if !ok {
        return None;
    }
    let list: Value = serde_json::from_str(&out).ok()?;
    let items = list["items"].as_array()?;
    let not_ready: Vec<String> = items
        .iter()
        .filter_map(|o| match condition(o, "Ready") {
            Some((s, _, _)) if s == "True" => None,
            found => Some(format!(
                "{}: {found:?}",
                o["metadata"]["name"].as_str().unwrap_or("?")
            )),
        })
        .collect();
    let counts = (items.len() - not_ready.len(), items.len());
    Some((counts, not_ready.into_iter().take(5).collect()))
}

fn wait_all_ready(cp: &ControlPlane, ns: &str, timeout: Duration) -> Duration {
    let (_, took) = wait_for(
        &format!("all {INTERCONNECTS} interconnects in {ns} Ready"),
        timeout,
        || {
            let seen = ready_and_not(cp, ns);
            let all = seen
                .as_ref()
                .is_some_and(|&((r, t), _)| r == t && t == INTERCONNECTS);
            (
                all.then_some(()),
                format!("(ready, total) and not Ready = {seen:?}"),
            )
        },
    );
    took
}

/// Asks for a reconcile through the API (annotation) and waits until the controller reports it
/// handled in status: the controller's watches and writes work again. Returns how long it took.
fn reconcile_request_handled(cp: &ControlPlane, ns: &str, cic: &str, timeout: Duration) -> Duration {
    let stamp = format!(
        "{}",
        SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos()
    );
    let annotation = format!("cellnet.io/reconcile-requested-at={stamp}");
    let (_, took) = wait_for(
        &format!("{ns}/{cic} to handle reconcile request {stamp}"),
        timeout,
        || {
            // The first attempts may still meet a server that is warming up: retry the annotate too.
            let (ok, _, err) = cp.kubectl_run(&[
                "annotate",
                "-n",
                ns,
                &format!("cic/{cic}"),
                &annotation,
                "--overwrite",
                "--request-timeout=5s",
            ]);
            if !ok {
                return (None, format!("annotate failed: {err}"));
            }
            let handled = cp
                .get_json(ns, &format!("cic/{cic}"))
                .and_then(|o| o["status"]["lastHandledReconcileAt"].as_str().map(str::to_string));
            (
                (handled.as_deref() == Some(stamp.as_str())).then_some(()),
                format!("lastHandledReconcileAt = {handled:?}"),
            )
        },
    );
    took
}

/// Deletes every interconnect and endpoint in `ns` and waits until they are gone: no object may
/// stay stuck with a finalizer. Returns how long it took.
fn delete_all(cp: &ControlPlane, ns: &str, timeout: Duration) -> Duration {
    let began = Instant::now();
    for kind in ["cic", "iep"] {
        let (ok, _, err) = cp.kubectl_run(&["delete", kind, "--all", "-n", ns, "--wait=false"]);
        assert!(ok, "kubectl delete {kind}: {err}");
        wait_gone(cp, ns, kind, timeout);
    }
    began.elapsed()
}

/// Waits until no object of `kind` is left in `ns`; names the ones left and their finalizers if not.
fn wait_gone(cp: &ControlPlane, ns: &str, kind: &str, timeout: Duration) -> Duration {
    let (_, took) = wait_for(&format!("every {kind} in {ns} gone"), timeout, || {
        let (ok, out, err) = cp.kubectl_run(&[
            "get",
            kind,
            "-n",
            ns,
            "-o",
            "jsonpath={range .items[*]}{.metadata.name} {.metadata.finalizers} {.status.conditions[?(@.type==\"Ready\")].message}{\"\\n\"}{end}",
        ]);
        let left: Vec<&str> = out.lines().filter(|l| !l.trim().is_empty()).collect();
        (
            (ok && left.is_empty()).then_some(()),
            format!(
                "{} left: {}{err}",
                left.len(),
                left.iter().take(5).copied().collect::<Vec<_>>().join("; ")
            ),
        )
    });
    took
}

/// A small xorshift generator: the kill moments vary from run to run, and a failing run can be
/// replayed with `CELLNET_FAULT_SEED`.
struct Jitter(u64);

impl Jitter {
    fn new() -> Jitter {
        let seed = std::env::var("CELLNET_FAULT_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64 | 1);
        report(&format!(
            "kill moments: seed {seed} (replay with CELLNET_FAULT_SEED={seed})"
        ));
        Jitter(seed)
    }

    /// A delay of 0 to `max_ms` milliseconds.
    fn delay(&mut self, max_ms: u64) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        Duration::from_millis(self.0 % (max_ms + 1))
    }
}

/// What happened at one kill.
struct Kill {
    point: String,
    peers_at_kill: usize,
    restarted: Instant,
}

/// Waits a random moment (0-100 ms), SIGKILLs the controller, notes how far it got, and starts
/// it again.
async fn kill_and_restart(
    fleet: &Fleet,
    controller: &mut ControllerProcess,
    jitter: &mut Jitter,
    point: String,
) -> Kill {
    let delay = jitter.delay(100);
    tokio::time::sleep(delay).await;
    block(|| controller.kill());
    let peers_at_kill = fleet.cellnet_peers().await;
    let began = Instant::now();
    block(|| controller.restart());
    report(&format!(
        "{}: SIGKILL {point} (+{} ms): {peers_at_kill} cellnet peers on the speakers; restarted in {:.1} s",
        fleet.ns,
        delay.as_millis(),
        began.elapsed().as_secs_f64()
    ));
    Kill {
        point,
        peers_at_kill,
        restarted: Instant::now(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_plane_restart_while_100_interconnects_reconcile() {
    let _serial = SERIAL.lock().await;
    let began = Instant::now();
    let cp = env();
    let ns = "faults-cp-restart";
    let fleet = Fleet::start(cp, ns, 0).await;
    let controller = block(|| ControllerProcess::start(cp, &[]));
    let _logs = keep_logs(cp, ns, &controller);

    let applied = Instant::now();
    let took = apply_fast(cp, ns, &fleet.manifests()).await;
    report(&format!(
        "{ns}: {SPEAKERS} endpoints and {INTERCONNECTS} interconnects applied in {:.1} s",
        took.as_secs_f64()
    ));

    // Mid-reconcile: some peers pushed, far from all of them.
    let (peers_before, _) = fleet.wait_count(30, false, PUSH_TIMEOUT).await;
    let ready_before = block(|| ready_count(cp, ns));
    let down = block(|| cp.restart());
    let back = Instant::now();
    report(&format!(
        "{ns}: control plane restarted ({:.1} s without API) at {peers_before}/{} peers, (ready, total) {ready_before:?}",
        down.as_secs_f64(),
        2 * INTERCONNECTS
    ));

    // The controller reconnects by itself: a reconcile asked for through the API is handled.
    let reconnect = block(|| reconcile_request_handled(cp, ns, "ic-0", Duration::from_secs(90)));
    report(&format!(
        "{ns}: controller reconnected: reconcile request handled {:.1} s after the control plane was back",
        reconnect.as_secs_f64()
    ));

    // It finishes: every peer exactly once on its speaker, every interconnect Ready.
    fleet.wait_exact(true, PUSH_TIMEOUT, &controller).await;
    let pushed = back.elapsed();
    let ready = block(|| wait_all_ready(cp, ns, READY_TIMEOUT));
    let all_ready = back.elapsed();
    block(|| fleet.assert_exact(true, &controller));
    report(&format!(
        "{ns}: after the restart every peer exact at {:.1} s, all {INTERCONNECTS} Ready at {:.1} s (waited {:.1} s for Ready); apply -> all Ready {:.1} s",
        pushed.as_secs_f64(),
        all_ready.as_secs_f64(),
        ready.as_secs_f64(),
        applied.elapsed().as_secs_f64()
    ));

    // Deleting everything removes every peer; no finalizer is left behind.
    let deleting = Instant::now();
    delete_interconnects(cp, ns).await;
    let cics_gone = block(|| wait_gone(cp, ns, "cic", DELETE_TIMEOUT));
    fleet
        .wait_exact(false, Duration::from_secs(10), &controller)
        .await;
    block(|| fleet.assert_exact(false, &controller));
    let eps_gone = block(|| delete_all(cp, ns, DELETE_TIMEOUT));
    report(&format!(
        "{ns}: everything deleted in {:.1} s (interconnects gone in {:.1} s, then endpoints in {:.1} s); test took {:.1} s",
        deleting.elapsed().as_secs_f64(),
        cics_gone.as_secs_f64(),
        eps_gone.as_secs_f64(),
        began.elapsed().as_secs_f64()
    ));
}

/// A fleet in `ns` with two peers added by hand, a running controller, and the jitter source.
async fn kill_setup(
    cp: &'static ControlPlane,
    ns: &'static str,
    base: u8,
) -> (Fleet, ControllerProcess, KeepLogs, Jitter) {
    let mut fleet = Fleet::start(cp, ns, base).await;
    // Configured by an operator before cellnet runs: these must survive untouched.
    block(|| {
        fleet.add_hand_peer(0, Ipv4Addr::new(127, 0, 6, base + 50), 65250);
        fleet.add_hand_peer(7, Ipv4Addr::new(127, 0, 6, base + 51), 65251);
    });
    let controller = block(|| ControllerProcess::start(cp, &[]));
    let logs = keep_logs(cp, ns, &controller);
    (fleet, controller, logs, Jitter::new())
}

fn report_kills(ns: &str, kills: &[Kill], began: Instant) {
    report(&format!(
        "{ns}: {} kills: {}; test took {:.1} s",
        kills.len(),
        kills
            .iter()
            .map(|k| format!("[{}: {} peers]", k.point, k.peers_at_kill))
            .collect::<Vec<_>>()
            .join(" "),
        began.elapsed().as_secs_f64()
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_sigkilled_at_five_points_of_an_apply_leaves_exactly_the_desired_peers() {
    let _serial = SERIAL.lock().await;
    let began = Instant::now();
    let cp = env();
    let ns = "faults-kill-apply";
    let (fleet, mut controller, _logs, mut jitter) = kill_setup(cp, ns, 100).await;
    let mut kills: Vec<Kill> = Vec::new();
    let total = 2 * INTERCONNECTS;

    let applied = Instant::now();
    let took = apply_fast(cp, ns, &fleet.manifests()).await;
    report(&format!(
        "{ns}: {} objects applied in {:.1} s",
        SPEAKERS + INTERCONNECTS,
        took.as_secs_f64()
    ));
    kills.push(
        kill_and_restart(
            &fleet,
            &mut controller,
            &mut jitter,
            "right after the apply".into(),
        )
        .await,
    );
    // Then at a quarter, half and 80 % of the peers, each at least 10 peers after the last kill.
    for share in [25, 50, 80] {
        let last = kills.last().map_or(0, |k| k.peers_at_kill);
        let at_least = (total * share / 100).max(last + 10).min(total);
        let (_, took) = fleet.wait_count(at_least, false, PUSH_TIMEOUT).await;
        report(&format!(
            "{ns}: {at_least} peers reached {:.1} s after the previous restart",
            took.as_secs_f64()
        ));
        let point = format!("once {at_least} peers existed ({share} % wanted)");
        kills.push(kill_and_restart(&fleet, &mut controller, &mut jitter, point).await);
    }
    let pushed = fleet.wait_exact(true, PUSH_TIMEOUT, &controller).await;
    report(&format!(
        "{ns}: every peer exact {:.1} s after the 4th restart",
        pushed.as_secs_f64()
    ));

    // Every peer is there; sessions and status are still settling.
    let ready_at_kill = block(|| ready_count(cp, ns));
    let point = format!("once every peer existed, (ready, total) {ready_at_kill:?}");
    kills.push(kill_and_restart(&fleet, &mut controller, &mut jitter, point).await);
    let exact = fleet.wait_exact(true, PUSH_TIMEOUT, &controller).await;
    let ready = block(|| wait_all_ready(cp, ns, READY_TIMEOUT));
    let converged = kills.last().unwrap().restarted.elapsed();
    block(|| fleet.assert_exact(true, &controller));
    report(&format!(
        "{ns}: after the 5th kill: peers exact at {:.1} s, all Ready after {:.1} s more ({:.1} s after the restart); apply -> all Ready {:.1} s",
        exact.as_secs_f64(),
        ready.as_secs_f64(),
        converged.as_secs_f64(),
        applied.elapsed().as_secs_f64()
    ));

    // Deleting everything: no finalizer stuck, every peer cellnet made gone, the hand-made ones kept.
    let deleting = Instant::now();
    delete_interconnects(cp, ns).await;
    block(|| wait_gone(cp, ns, "cic", DELETE_TIMEOUT));
    fleet
        .wait_exact(false, Duration::from_secs(10), &controller)
        .await;
    block(|| fleet.assert_exact(false, &controller));
    block(|| delete_all(cp, ns, DELETE_TIMEOUT));
    report(&format!(
        "{ns}: everything deleted in {:.1} s",
        deleting.elapsed().as_secs_f64()
    ));
    assert!(kills.len() >= 5, "only {} kills", kills.len());
    assert!(!controller.log().contains("panicked"), "the controller panicked");
    report_kills(ns, &kills, began);
}

/// Killed in the middle of a bulk delete: the restarted controller must still remove every peer
/// (it once read endpoints missing from a cache still filling as "nothing to remove").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_sigkilled_during_deletion_leaves_no_peer_behind() {
    let _serial = SERIAL.lock().await;
    let began = Instant::now();
    let cp = env();
    let ns = "faults-kill-delete";
    let (fleet, mut controller, _logs, mut jitter) = kill_setup(cp, ns, 160).await;
    let mut kills: Vec<Kill> = Vec::new();
    let total = 2 * INTERCONNECTS;

    apply_fast(cp, ns, &fleet.manifests()).await;
    let pushed = fleet.wait_exact(true, PUSH_TIMEOUT, &controller).await;
    report(&format!(
        "{ns}: every peer exact {:.1} s after the apply",
        pushed.as_secs_f64()
    ));

    // Deletion, killed three times on its way: the delete request runs beside the kills (it
    // returns only once every object is marked, by which time most peers can be gone).
    let deleting = Instant::now();
    let deleter = tokio::spawn(delete_interconnects(cp, ns));
    for removed in [10, 80, 150] {
        let last = kills.last().map_or(total, |k| k.peers_at_kill).min(total);
        let at_most = (total - removed).min(last.saturating_sub(10));
        fleet.wait_count(at_most, true, DELETE_TIMEOUT).await;
        let point = format!("during deletion, once at most {at_most} peers were left");
        kills.push(kill_and_restart(&fleet, &mut controller, &mut jitter, point).await);
    }
    deleter.await.expect("the delete request");
    assert!(
        kills.iter().any(|k| k.peers_at_kill > 0),
        "every kill came after the deletion had finished: the test did not test anything"
    );
    let gone = block(|| wait_gone(cp, ns, "cic", DELETE_TIMEOUT));
    let cleaned = fleet
        .wait_exact(false, Duration::from_secs(30), &controller)
        .await;
    block(|| fleet.assert_exact(false, &controller));
    report(&format!(
        "{ns}: deletion done {:.1} s after the last restart (speakers exact {:.1} s after that); {:.1} s from the delete",
        gone.as_secs_f64(),
        cleaned.as_secs_f64(),
        deleting.elapsed().as_secs_f64()
    ));
    block(|| delete_all(cp, ns, DELETE_TIMEOUT));
    assert!(!controller.log().contains("panicked"), "the controller panicked");
    report_kills(ns, &kills, began);
}
