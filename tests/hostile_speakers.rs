//! Bounded under hostile speakers (issue 18 item 11): one tenant's endpoints name a GoBGP API that
//! floods `ListPeer` and `WatchEvent` and an OpenDaylight whose every answer is an 8 MiB array
//! (tests/support/hostile.rs); another tenant's interconnect between two real gobgpd still becomes
//! Ready, the hostile ones report why in their status, and the controller's peak memory stays
//! under the chart's limit (256 MiB), read from /proc while the floods run.
mod support;

use std::net::Ipv4Addr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use cellnet::api::CellInterconnect;
use support::gobgp::Gobgpd;
use support::hostile::{self, Hostile};
use support::manifests::{self, BGP_PORT, endpoint, interconnect};
use support::{namespace, report, wait_condition, wait_ready};

const READY_TIMEOUT: Duration = Duration::from_secs(90);
/// The chart's memory limit (charts/cellnet/values.yaml `resources.limits.memory`).
const MEMORY_LIMIT_KIB: u64 = 256 * 1024;
/// Interconnects on each hostile speaker: more than one reconcile reads it at once.
const HOSTILE_LINKS: u8 = 6;
/// How long the floods run after the healthy interconnect is Ready, memory watched throughout.
const FLOOD_HOLD: Duration = Duration::from_secs(20);

fn addr(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 7, last)
}

fn external(name: &str, cell: &str, last: u8) -> manifests::Endpoint {
    endpoint(name)
        .cell(cell)
        .address(addr(last))
        .asn(65_400 + u32::from(last))
        .port(BGP_PORT)
}

/// `VmRSS` or `VmHWM` (peak) of `pid`, in KiB.
fn memory_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the controller runs");
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// The hostile tenant: `HOSTILE_LINKS` interconnects from an endpoint on each hostile API to
/// external endpoints.
fn hostile_objects(gobgp: &Hostile, odl: &Hostile) -> String {
    let mut docs = vec![
        manifests::secret("odl-credentials", &[("username", "admin"), ("password", "admin")]),
        external("ep-flood", "flood", 10).gobgp(&gobgp.url()).yaml(),
        external("ep-huge", "huge", 11)
            .opendaylight(&odl.url(), "odl-credentials")
            .yaml(),
    ];
    for i in 0..HOSTILE_LINKS {
        let far = format!("far-{i}");
        docs.push(external(&far, &format!("far{i}"), 100 + i).yaml());
        docs.push(interconnect(&format!("flood-{i}"), "ep-flood", &far).yaml());
        docs.push(interconnect(&format!("huge-{i}"), "ep-huge", &far).yaml());
    }
    docs.join("---\n")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flooding_speaker_stays_within_the_caps_and_other_tenants_reach_ready() {
    let (cp, controller) = support::controller::shared(&[]);
    let pid = controller.pid().expect("the controller runs");
    let before = memory_kib(pid, "VmRSS");
    let gobgp = hostile::flooding_gobgp(addr(10));
    let odl = hostile::huge_opendaylight(addr(11), hostile::huge_json(4_000_000));

    namespace(cp, "hostile").await;
    cp.apply("hostile", &hostile_objects(&gobgp, &odl));
    let began = Instant::now();

    // The other tenant, on real speakers.
    namespace(cp, "healthy").await;
    let a = Gobgpd::start("healthy-a", addr(1), None);
    let b = Gobgpd::start("healthy-b", addr(2), None);
    cp.apply(
        "healthy",
        &[
            external("ep-a", "cell-a", 1).gobgp(&a.api_url()).yaml(),
            external("ep-b", "cell-b", 2).gobgp(&b.api_url()).yaml(),
            interconnect("a-b", "ep-a", "ep-b").yaml(),
        ]
        .join("---\n"),
    );
    let (_, took) = wait_ready::<CellInterconnect>(cp, "healthy", "a-b", READY_TIMEOUT);
    report(&format!(
        "healthy a-b Ready after {:.1} s beside the floods",
        took.as_secs_f64()
    ));

    // Let the floods run on, then read the peak.
    std::thread::sleep(FLOOD_HOLD);
    let (rss, peak) = (memory_kib(pid, "VmRSS"), memory_kib(pid, "VmHWM"));
    let sent = &gobgp.sent;
    report(&format!(
        "controller memory: {} MiB before, {} MiB now, peak {} MiB over {:.0} s of floods; the flooding GoBGP produced {} listed peers and {} events, the huge OpenDaylight sent {} answers of 8 MiB",
        before / 1024,
        rss / 1024,
        peak / 1024,
        began.elapsed().as_secs_f64(),
        sent.listed_peers.load(Ordering::Relaxed),
        sent.events.load(Ordering::Relaxed),
        odl.sent.answers.load(Ordering::Relaxed),
    ));
    assert!(
        sent.events.load(Ordering::Relaxed) > 1_000,
        "the watch flood ran: {sent:?}"
    );
    assert!(odl.sent.answers.load(Ordering::Relaxed) >= u64::from(HOSTILE_LINKS));
    assert!(
        peak < MEMORY_LIMIT_KIB,
        "peak RSS {peak} KiB over the chart's limit of {MEMORY_LIMIT_KIB} KiB"
    );
    // The hostile interconnects say why, with the limit that cut the answer.
    let (flood, _) = wait_condition::<CellInterconnect>(
        cp,
        "hostile",
        "flood-0",
        "Ready",
        "False",
        Some("SdnRejected"),
        READY_TIMEOUT,
    );
    let (huge, _) = wait_condition::<CellInterconnect>(
        cp,
        "hostile",
        "huge-0",
        "Ready",
        "False",
        Some("SdnRejected"),
        READY_TIMEOUT,
    );
    let message = |cic: &CellInterconnect| {
        support::describe(cic.status.as_ref().map_or(&[][..], |s| &s.conditions[..]))
    };
    assert!(
        message(&flood).contains("more than 4 peers"),
        "{}",
        message(&flood)
    );
    assert!(
        message(&huge).contains("more than 1000000 JSON values"),
        "{}",
        message(&huge)
    );

    drop((a, b));
}
