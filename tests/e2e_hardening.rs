//! End to end, a controller run as a careful operator would: `--require-tls`, and a liveness
//! watchdog short enough to catch a stuck call. The real controller process, a real control
//! plane, the RESTCONF test server (tests/support/odl_server.rs) over https with its own CA, and
//! black holes: TCP listeners on loopback that never accept, so every call to them waits for the
//! whole `--sdn-timeout`.
//!
//! - `--require-tls` refuses credentials over plain http and skipped verification before any
//!   request (issue 18 item 10);
//! - one healthy interconnect reaches Ready in its normal time beside many against a black hole:
//!   the circuit breaker answers for the unreachable speaker without a call (item 12);
//! - `/healthz` fails while a reconcile is stuck longer than `--liveness-stall-after`, and
//!   recovers when it ends (item 13).
mod support;

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use cellnet::api::{CellInterconnect, InfraEndpoint};
use support::manifests::{self, BGP_PORT, endpoint, interconnect};
use support::odl_server::{OdlConfig, OdlServer};
use support::{
    ControlPlane, ControllerProcess, Kind as _, namespace, report, wait_condition, wait_for, wait_ready,
};

const TIMEOUT: Duration = Duration::from_secs(60);
/// Every SDN call waits this long for a black hole, longer than the liveness watchdog's limit.
const SDN_TIMEOUT: &str = "10s";
const STALL_AFTER: &str = "4s";

struct Env {
    cp: &'static ControlPlane,
    _controller: &'static ControllerProcess,
    probes: u16,
}

fn env() -> &'static Env {
    static ENV: std::sync::OnceLock<Env> = std::sync::OnceLock::new();
    ENV.get_or_init(|| {
        let probes = support::free_port();
        let bind = format!("127.0.0.1:{probes}");
        let (cp, controller) = support::controller::shared(&[
            "--require-tls",
            "--sdn-resync-interval",
            "2s",
            "--sdn-timeout",
            SDN_TIMEOUT,
            "--liveness-stall-after",
            STALL_AFTER,
            "--health-probe-bind-address",
            &bind,
        ]);
        Env {
            cp,
            _controller: controller,
            probes,
        }
    })
}

/// `GET path` on the probe server: (status code, body).
fn probe(port: u16, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("probe server");
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    let code = answer.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default().to_string();
    (code, body)
}

/// A TCP listener that never accepts: connections wait in its backlog (then SYNs are dropped),
/// and every request to it waits for the caller's timeout.
fn black_hole() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    (listener, url)
}

/// A CA and a certificate for 127.0.0.1 signed by it: (CA PEM, certificate PEM, key PEM).
fn pki() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, SanType};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
    let cert = params.signed_by(&key, &issuer).unwrap();
    (ca_cert.pem(), cert.pem(), key.serialize_pem())
}

/// Speaker addresses of this binary: 127.0.3.x (the other e2e binaries use 127.0.0-2.x).
fn addr(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 3, last)
}

fn external(name: &str, cell: &str, address: impl std::fmt::Display, asn: u32) -> manifests::Endpoint {
    endpoint(name).cell(cell).address(address).asn(asn).port(BGP_PORT)
}

/// An OpenDaylight cell over https with its CA (what `--require-tls` accepts) joined to an
/// external cell; returns its server.
fn healthy_pair(cp: &ControlPlane, ns: &str, last: u8) -> OdlServer {
    let (ca, cert, key) = pki();
    let server = OdlServer::start_tls(
        OdlConfig::new(65300 + u32::from(last), &addr(last).to_string()),
        &cert,
        &key,
    );
    cp.apply(
        ns,
        &[
            manifests::secret("odl-admin", &[("username", "admin"), ("password", "admin")]),
            manifests::secret("odl-ca", &[("ca.crt", ca.as_str())]),
            external("ep-odl", "odl-cell", addr(last), 65300 + u32::from(last))
                .opendaylight(&server.url(), "odl-admin")
                .tls(Some("odl-ca"), false)
                .yaml(),
            external("ep-dc", "dc", addr(last + 1), 65301 + u32::from(last)).yaml(),
            interconnect("odl-dc", "ep-odl", "ep-dc").yaml(),
        ]
        .join("---\n"),
    );
    server
}

/// Basic auth over plain http, and an https API whose certificate would not be verified: both
/// refused with `TlsRequired` on the endpoint and on the interconnect, and not one request
/// reaches the server. The same server over https with its CA is used.
#[tokio::test(flavor = "multi_thread")]
async fn require_tls_refuses_plaintext_credentials_and_unverified_certificates() {
    let Env { cp, .. } = env();
    let ns = "e2e-strict-tls";
    namespace(cp, ns).await;
    let plain = OdlServer::start(OdlConfig::new(65311, &addr(11).to_string()));
    let (_, cert, key) = pki();
    let unverified = OdlServer::start_tls(OdlConfig::new(65313, &addr(13).to_string()), &cert, &key);
    cp.apply(
        ns,
        &[
            manifests::secret("odl-admin", &[("username", "admin"), ("password", "admin")]),
            external("ep-plain", "plain", addr(11), 65311)
                .opendaylight(&plain.url(), "odl-admin")
                .yaml(),
            external("ep-dc", "dc", addr(12), 65312).yaml(),
            interconnect("plain-dc", "ep-plain", "ep-dc").yaml(),
            external("ep-skip", "skip", addr(13), 65313)
                .opendaylight(&unverified.url(), "odl-admin")
                .tls(None, true)
                .yaml(),
        ]
        .join("---\n"),
    );
    for (name, what) in [("ep-plain", "plain http"), ("ep-skip", "insecureSkipVerify")] {
        let (ep, took) =
            wait_condition::<InfraEndpoint>(cp, ns, name, "Ready", "False", Some("TlsRequired"), TIMEOUT);
        report(&format!("{name}: TlsRequired after {:.1} s", took.as_secs_f64()));
        let message = &ep.condition("Ready").unwrap().message;
        assert!(
            message.contains(what) && message.contains("--require-tls"),
            "{message}"
        );
        assert_eq!(ep.condition("Stalled").map(|c| c.status.as_str()), Some("True"));
    }
    let (cic, _) = wait_condition::<CellInterconnect>(
        cp,
        ns,
        "plain-dc",
        "Ready",
        "False",
        Some("TlsRequired"),
        TIMEOUT,
    );
    assert!(cic.condition("Ready").unwrap().message.contains("plain http"));
    // Two speaker polls later: still nothing sent.
    std::thread::sleep(Duration::from_secs(5));
    assert!(
        plain.requests().is_empty(),
        "requests over plain http: {:?}",
        plain.requests().len()
    );
    assert!(unverified.requests().is_empty());
    assert_eq!(unverified.failed_handshakes(), 0, "not even a TLS handshake");

    // https with the endpoint's CA is what --require-tls wants.
    let ns = "e2e-strict-tls-ok";
    namespace(cp, ns).await;
    let _server = healthy_pair(cp, ns, 15);
    let (ep, _) = wait_ready::<InfraEndpoint>(cp, ns, "ep-odl", TIMEOUT);
    assert!(ep.condition("InsecureTransport").is_none());
    wait_ready::<CellInterconnect>(cp, ns, "odl-dc", TIMEOUT);
}

/// `/healthz` answers 503, naming the reconcile, while one has run longer than
/// `--liveness-stall-after` (an endpoint whose speaker is a black hole waits the whole
/// `--sdn-timeout`), and 200 again once it ended and the circuit breaker answers for the
/// speaker without a call.
#[tokio::test(flavor = "multi_thread")]
async fn liveness_fails_while_a_reconcile_is_stuck_and_recovers() {
    let Env { cp, probes, .. } = env();
    let ns = "e2e-strict-live";
    namespace(cp, ns).await;
    let (code, body) = probe(*probes, "/healthz");
    assert_eq!(code, 200, "{body}");
    let (_hole, url) = black_hole();
    let created = Instant::now();
    cp.apply(
        ns,
        &external("ep-void", "void", addr(21), 65321).gobgp(&url).yaml(),
    );
    let (why, took) = wait_for("/healthz to fail", TIMEOUT, || {
        let (code, body) = probe(*probes, "/healthz");
        let stuck = code == 503 && body.contains(&format!("InfraEndpoint/{ns}/ep-void"));
        (stuck.then(|| body.clone()), format!("{code} {body}"))
    });
    report(&format!(
        "/healthz 503 {:.1} s after the endpoint was created: {}",
        took.as_secs_f64(),
        why.trim()
    ));
    assert!(
        why.contains("has run for") && why.contains("--liveness-stall-after"),
        "{why}"
    );
    let (_, took) = wait_for("/healthz to pass again", TIMEOUT, || {
        let (code, body) = probe(*probes, "/healthz");
        ((code == 200).then_some(()), format!("{code} {body}"))
    });
    report(&format!(
        "/healthz 200 again after {:.1} s ({:.1} s after creation)",
        took.as_secs_f64(),
        created.elapsed().as_secs_f64()
    ));
    let (ep, _) = wait_condition::<InfraEndpoint>(
        cp,
        ns,
        "ep-void",
        "Ready",
        "False",
        Some("SdnUnreachable"),
        TIMEOUT,
    );
    let message = &ep.condition("Ready").unwrap().message;
    assert!(message.contains(&url), "{message}");
}

/// How many interconnects point at the black hole (`CELLNET_BLACK_HOLE_COUNT`, default 500).
fn black_hole_count() -> usize {
    std::env::var("CELLNET_BLACK_HOLE_COUNT")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(500)
}

/// The address of the `i`th external endpoint: 198.51.100.1-254, then 203.0.113.1-254.
fn external_address(i: usize) -> Ipv4Addr {
    match i {
        0..=253 => Ipv4Addr::new(198, 51, 100, i as u8 + 1),
        _ => Ipv4Addr::new(203, 0, 113, (i - 254) as u8 + 1),
    }
}

/// Many interconnects whose local speaker is a black hole, and one healthy interconnect created
/// after them: the healthy one is Ready about as fast as alone. Without the circuit breaker,
/// each of the many held a reconcile slot for the whole SDN timeout (500 x 10 s / 16 slots: over
/// 5 minutes for every round), and the healthy one waited behind them.
#[tokio::test(flavor = "multi_thread")]
async fn a_healthy_interconnect_is_ready_in_its_normal_time_beside_many_against_a_black_hole() {
    let Env { cp, .. } = env();
    let count = black_hole_count().min(508);
    let alone = "e2e-strict-alone";
    namespace(cp, alone).await;
    let _first = healthy_pair(cp, alone, 31);
    let (_, normal) = wait_ready::<CellInterconnect>(cp, alone, "odl-dc", TIMEOUT);

    let ns = "e2e-strict-void";
    namespace(cp, ns).await;
    let (_hole, url) = black_hole();
    let mut objects = vec![external("ep-void", "void", addr(41), 65341).gobgp(&url).yaml()];
    for i in 0..count {
        let (ep, cic) = (format!("ep-{i}"), format!("void-{i}"));
        objects.push(external(&ep, &format!("far-{i}"), external_address(i), 64600 + i as u32).yaml());
        objects.push(interconnect(&cic, "ep-void", &ep).yaml());
    }
    // Applied in the background (kubectl creates them one by one, ~30 a second); the healthy
    // interconnect comes while the first ones hold the reconcile slots against the black hole.
    let began = Instant::now();
    let applying = std::thread::spawn({
        let yaml = objects.join("---\n");
        move || {
            cp.apply(ns, &yaml);
            began.elapsed()
        }
    });
    wait_for("the first interconnects against the black hole", TIMEOUT, || {
        let found = cp.get::<CellInterconnect>(ns, "void-20");
        (found.map(|_| ()), "void-20 not created yet".into())
    });
    let beside = "e2e-strict-beside";
    namespace(cp, beside).await;
    let _second = healthy_pair(cp, beside, 33);
    let (_, took) = wait_ready::<CellInterconnect>(cp, beside, "odl-dc", TIMEOUT);
    report(&format!(
        "healthy interconnect Ready in {:.1} s alone, {:.1} s beside {count} against a black hole \
         (created {:.1} s into their apply)",
        normal.as_secs_f64(),
        took.as_secs_f64(),
        (began.elapsed() - took).as_secs_f64()
    ));
    let applied = applying.join().expect("apply");
    report(&format!(
        "{count} interconnects against a black hole applied in {:.1} s",
        applied.as_secs_f64()
    ));
    // Every one of them says why, and soon: none waits for a call to the black hole.
    let last = format!("void-{}", count - 1);
    let (_, all) =
        wait_condition::<CellInterconnect>(cp, ns, &last, "Ready", "False", Some("SdnUnreachable"), TIMEOUT);
    report(&format!(
        "{last} SdnUnreachable {:.1} s after the apply ({:.1} s of waiting here)",
        began.elapsed().as_secs_f64(),
        all.as_secs_f64()
    ));
    let obj = cp.get::<CellInterconnect>(ns, &last).unwrap();
    let message = &obj.condition("Ready").unwrap().message;
    assert!(message.contains(&url), "{message}");
}
