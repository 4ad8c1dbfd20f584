//! The phases run once, on what the last round left running: steady state (from the
//! controller's own metrics), drift repair, controller RSS and CPU, RSS with many objects.
use std::net::IpAddr;
use std::time::{Duration, Instant};

use cellnet::api::CellInterconnect;
use cellnet::sdn::SdnBackend;
use kube::api::Api;
use serde_json::{Map, Value, json};

use crate::latency::percentile;
use crate::round::{Live, RUN};
use crate::speakers::speaker_addr;
use crate::support::report;
use crate::{apply_all, interconnect_json};

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

/// Steady state, counted from the controller's own metrics, once the re-checks scheduled while
/// sessions came up (10 s) have run.
pub async fn steady(live: &Live, steady_secs: u64, speakers: u16) -> Map<String, Value> {
    let pid = live.controller.pid().expect("controller pid");
    tokio::time::sleep(Duration::from_secs(15)).await;
    let (m1, cpu1, t1) = (scrape(live.metrics_port).await, cpu_seconds(pid), Instant::now());
    tokio::time::sleep(Duration::from_secs(steady_secs)).await;
    let (m2, cpu2) = (scrape(live.metrics_port).await, cpu_seconds(pid));
    let delta = |name: &str| counter(&m2, name) - counter(&m1, name);
    let (writes, status) = (
        delta("cellnet_sdn_writes_total"),
        delta("cellnet_status_writes_total"),
    );
    let reads = delta("cellnet_sdn_api_calls_total");
    report(&format!(
        "steady: {writes} SDN writes, {status} status writes, {reads} SDN reads"
    ));
    let figures = json!({
        "steady_secs": steady_secs,
        "steady_sdn_writes": writes,
        "steady_sdn_reads": reads,
        "steady_status_writes": status,
        "steady_sdn_reads_per_speaker": reads / f64::from(speakers),
        "cpu_percent": 100.0 * (cpu2 - cpu1) / t1.elapsed().as_secs_f64(),
        "rss_mib": rss_mib(pid),
    });
    figures.as_object().cloned().unwrap_or_default()
}

/// Drift: one peer at a time deleted behind cellnet's back, until it is back.
pub async fn drift(live: &Live, pairs: &[(u16, u16)], samples: usize) -> Map<String, Value> {
    let mut drift = Vec::new();
    for s in 0..samples.min(pairs.len()) {
        let k = s * pairs.len() / samples.max(1);
        let (i, j) = pairs[k];
        let (c, neighbor) = (&live.clients[usize::from(i)], IpAddr::V4(speaker_addr(RUN, j)));
        c.remove_peer(neighbor, &format!("cellnet:{}/{}", live.ns, live.names[k]))
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
    let figures = json!({
        "drift_samples": drift.len(),
        "drift_p50_s": percentile(&drift, 0.5),
        "drift_p99_s": percentile(&drift, 0.99),
    });
    figures.as_object().cloned().unwrap_or_default()
}

/// Many objects: suspended extra interconnects (caches, not sessions), up to `many` in all.
pub async fn many(
    live: &Live,
    client: &kube::Client,
    pairs: &[(u16, u16)],
    many: usize,
) -> Map<String, Value> {
    let cics: Api<CellInterconnect> = Api::namespaced(client.clone(), &live.ns);
    let extra = many.saturating_sub(pairs.len());
    let began = Instant::now();
    let objects = (0..extra).map(|k| {
        let (i, j) = pairs[k % pairs.len()];
        interconnect_json(&live.ns, &format!("many-{k}"), i, j, true)
    });
    apply_all(&cics, objects.collect()).await;
    // Let the controller see and reconcile them all (each gets status Suspended).
    loop {
        let suspended = live
            .watched
            .store
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
            began.elapsed() < Duration::from_secs(900),
            "{suspended}/{extra} suspended after 900 s"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let rss = rss_mib(live.controller.pid().expect("controller pid"));
    report(&format!("{many} objects present: controller RSS {rss:.1} MiB"));
    let figures = json!({"many_objects": many, "rss_10k_mib": rss});
    figures.as_object().cloned().unwrap_or_default()
}
