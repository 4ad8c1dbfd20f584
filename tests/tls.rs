//! TLS to the SDN APIs end to end (issue 11, fault 7): InfraEndpoints with `spec.sdn.tls`, the
//! real controller process, a real control plane, real `gobgpd --tls` and the RESTCONF test
//! server over HTTPS. Certificates and CAs are made here with rcgen.
//!
//! What must hold, for GoBGP's gRPC API and for OpenDaylight's RESTCONF alike:
//! - the CA from `tls.caSecretRef` -> `Ready=True`;
//! - another CA, a certificate for another host name, an expired certificate -> `Ready=False`,
//!   reason `SdnTlsFailed`, `Stalled=True`, a message that says which, and nothing configured on
//!   the speaker;
//! - `insecureSkipVerify: true` -> accepted (also for a certificate of another CA and name);
//! - the CA Secret fixed (the CA rotated) -> `Ready=True` without restarting the controller.
//!
//! One control plane and one controller (`--sdn-resync-interval 2s`) serve both tests; each has
//! its own namespace and its own speakers on 127.0.9.x (no other test binary uses 127.0.9.x).
//! gobgpd serves its API on 127.0.0.1 only (tests/support/gobgp.rs), so for GoBGP a "certificate
//! for another host name" is a certificate for 127.0.0.1 reached as `https://localhost:<port>`.
mod support;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use cellnet::api::{CellInterconnect, InfraEndpoint};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use serde_json::Value;
use support::gobgp::Gobgpd;
use support::manifests::{self, BGP_PORT, interconnect};
use support::odl_server::{OdlConfig, OdlServer};
use support::{ControlPlane, ControllerProcess, Kind, namespace, report, wait_condition, wait_ready};

const TIMEOUT: Duration = Duration::from_secs(30);
/// Two gobgpd reach Established in 6-9 s on first connect (connect-retry timer).
const SESSION_TIMEOUT: Duration = Duration::from_secs(45);
/// The speaker watcher retries an unreachable speaker at most 60 s apart (plus the poll).
const RENEWED_TIMEOUT: Duration = Duration::from_secs(70);

fn addr(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 9, last)
}

fn asn(last: u8) -> u32 {
    65900 + u32::from(last)
}

fn env() -> (&'static ControlPlane, &'static ControllerProcess) {
    support::controller::shared(&["--sdn-resync-interval", "2s"])
}

/// A test CA (its own distinguished name, so two CAs never look alike) that signs server
/// certificates.
struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
        let pem = params.self_signed(&key).unwrap().pem();
        Ca {
            pem,
            issuer: Issuer::new(params, key),
        }
    }

    /// A server certificate for `names` (IP addresses or DNS names): (cert PEM, key PEM).
    fn server(&self, names: &[&str]) -> (String, String) {
        self.sign(names, false)
    }

    /// Like [`Ca::server`], valid only in 2020.
    fn expired(&self, names: &[&str]) -> (String, String) {
        self.sign(names, true)
    }

    fn sign(&self, names: &[&str], expired: bool) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

/// A Secret with the CA bundle under `ca.crt`, as `spec.sdn.tls.caSecretRef` expects it.
fn ca_secret(name: &str, pem: &str) -> String {
    let bundle: String = pem.lines().map(|l| format!("{l}\n")).collect();
    manifests::secret(name, &[("ca.crt", &bundle)])
}

fn credentials(name: &str) -> String {
    manifests::secret(name, &[("username", "admin"), ("password", "admin")])
}

/// Endpoint `name` of cell `cell<last>` at speaker address `last` (external until given an SDN).
fn external(name: &str, last: u8) -> manifests::Endpoint {
    manifests::endpoint(name)
        .cell(&format!("cell{last}"))
        .address(addr(last))
        .asn(asn(last))
        .port(BGP_PORT)
}

/// A GoBGP endpoint at `url` with `spec.sdn.tls` (CA Secret, skip verification).
fn gobgp_endpoint(name: &str, last: u8, url: &str, ca_secret: Option<&str>, skip_verify: bool) -> String {
    external(name, last).gobgp(url).tls(ca_secret, skip_verify).yaml()
}

/// An OpenDaylight endpoint on `server` with `spec.sdn.tls` (CA Secret, skip verification).
fn odl_endpoint(
    name: &str,
    last: u8,
    server: &OdlServer,
    ca_secret: Option<&str>,
    skip_verify: bool,
) -> String {
    external(name, last)
        .opendaylight(&server.url(), "odl-admin")
        .tls(ca_secret, skip_verify)
        .yaml()
}

/// gobgpd with its API over TLS (BGP address 127.0.9.`last`).
fn gobgpd_tls(name: &str, last: u8, ca: &Ca, cert: &(String, String)) -> Gobgpd {
    Gobgpd::start_tls(name, addr(last), &ca.pem, &cert.0, &cert.1)
}

/// The RESTCONF test server over HTTPS on 127.0.9.`last`, for the speaker of endpoint `last`.
fn odl_tls(last: u8, cert: &(String, String)) -> OdlServer {
    let config = OdlConfig::new(asn(last), &addr(last).to_string());
    OdlServer::start_tls_on(addr(last), config, &cert.0, &cert.1)
}

/// `https://localhost:<port>` for a gobgpd whose certificate names only 127.0.0.1.
fn via_localhost(speaker: &Gobgpd) -> String {
    format!("https://localhost:{}", speaker.api_port)
}

/// The AS the speaker's BGP runs with (0: not started: nothing was configured on it).
fn running_asn(speaker: &Gobgpd) -> u64 {
    let global = speaker.cli(&["global", "-j"]).expect("gobgp global");
    let json: Value = serde_json::from_str(global.trim()).expect("gobgp global -j");
    json["asn"].as_u64().unwrap_or(0)
}

/// Waits for `Ready=False` with reason `SdnTlsFailed` on `<kind>/<name>`, checks that it is
/// Stalled (no fast retries) and that the message names the cell and says `says`; returns the
/// message.
fn expect_tls_failure<K: Kind>(cp: &ControlPlane, ns: &str, name: &str, says: &[&str]) -> String {
    let what = format!("{}/{name}", K::SHORT);
    let (obj, took) = wait_condition::<K>(cp, ns, name, "Ready", "False", Some("SdnTlsFailed"), TIMEOUT);
    let message = obj.condition("Ready").unwrap().message.clone();
    for s in says {
        assert!(message.contains(s), "{what}: {s:?} not in {message:?}");
    }
    let stalled = obj.condition("Stalled");
    assert!(
        stalled.is_some_and(|c| c.status == "True" && c.reason == "SdnTlsFailed"),
        "{what}: Stalled {stalled:?}"
    );
    report(&format!(
        "{what}: SdnTlsFailed after {:.1} s: {message}",
        took.as_secs_f64()
    ));
    message
}

#[tokio::test(flavor = "multi_thread")]
async fn gobgp_api_over_tls_from_the_ca_secret() {
    let (cp, _) = env();
    let ns = "tls-gobgp";
    namespace(cp, ns).await;
    let (ca, other_ca) = (Ca::new("cellnet test CA"), Ca::new("another CA"));
    let for_loopback = ca.server(&["127.0.0.1"]);
    let right = gobgpd_tls("tls-right", 1, &ca, &for_loopback);
    let rotated = gobgpd_tls("tls-rotated", 2, &ca, &ca.server(&["127.0.0.1"]));
    let renamed = gobgpd_tls("tls-name", 3, &ca, &ca.server(&["127.0.0.1"]));
    let unverified = gobgpd_tls("tls-skip", 4, &other_ca, &other_ca.server(&["127.0.0.1"]));

    let applied = Instant::now();
    cp.apply(
        ns,
        &[
            ca_secret("gobgp-ca", &ca.pem),
            ca_secret("rotating-ca", &other_ca.pem),
            gobgp_endpoint("right-ca", 1, &right.api_url(), Some("gobgp-ca"), false),
            gobgp_endpoint("wrong-ca", 2, &rotated.api_url(), Some("rotating-ca"), false),
            gobgp_endpoint("other-name", 3, &via_localhost(&renamed), Some("gobgp-ca"), false),
            gobgp_endpoint("skip-verify", 4, &via_localhost(&unverified), None, true),
            // Peers configured over both TLS connections: a real session between the two.
            interconnect("over-tls", "right-ca", "skip-verify").yaml(),
        ]
        .join("---\n"),
    );

    let (_, took) = wait_ready::<InfraEndpoint>(cp, ns, "right-ca", TIMEOUT);
    report(&format!(
        "GoBGP, right CA: Ready after {:.1} s",
        took.as_secs_f64()
    ));
    assert_eq!(running_asn(&right), u64::from(asn(1)), "BGP started over TLS");

    wait_ready::<InfraEndpoint>(cp, ns, "skip-verify", TIMEOUT);
    assert_eq!(running_asn(&unverified), u64::from(asn(4)));

    expect_tls_failure::<InfraEndpoint>(
        cp,
        ns,
        "wrong-ca",
        &["cell cell2", &rotated.api_url(), "not signed by a trusted CA"],
    );
    let message = expect_tls_failure::<InfraEndpoint>(
        cp,
        ns,
        "other-name",
        &["cell cell3", "not valid for the host name"],
    );
    assert!(
        message.contains("localhost") && message.contains("127.0.0.1"),
        "{message}"
    );
    // Refused before any call: BGP was not started on either speaker.
    assert_eq!(running_asn(&rotated), 0);
    assert_eq!(running_asn(&renamed), 0);
    report(&format!(
        "GoBGP: all four endpoints settled {:.1} s after apply",
        applied.elapsed().as_secs_f64()
    ));

    // The CA rotated in the Secret: the same controller process picks it up.
    cp.apply(ns, &ca_secret("rotating-ca", &ca.pem));
    let (_, took) = wait_ready::<InfraEndpoint>(cp, ns, "wrong-ca", TIMEOUT);
    report(&format!(
        "GoBGP, CA Secret fixed: Ready after {:.1} s (no controller restart)",
        took.as_secs_f64()
    ));
    assert_eq!(running_asn(&rotated), u64::from(asn(2)));
    // Untouched by the rotation.
    let obj = cp.get::<InfraEndpoint>(ns, "other-name").unwrap();
    assert_eq!(obj.condition("Ready").unwrap().reason, "SdnTlsFailed");

    // Both sides of the interconnect were configured over TLS, and BGP came up.
    let (_, took) = wait_ready::<CellInterconnect>(cp, ns, "over-tls", SESSION_TIMEOUT);
    report(&format!(
        "GoBGP: interconnect over two TLS APIs Established {:.1} s after apply (waited {:.1} s)",
        applied.elapsed().as_secs_f64(),
        took.as_secs_f64()
    ));
    for (speaker, peer) in [(&right, addr(4)), (&unverified, addr(1))] {
        let neighbor = speaker.neighbor_json(peer.into()).expect("peer configured");
        assert_eq!(neighbor["conf"]["description"], "cellnet:tls-gobgp/over-tls");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn opendaylight_over_https_from_the_ca_secret() {
    cellnet::tls::install_crypto_provider();
    let (cp, _) = env();
    let ns = "tls-odl";
    namespace(cp, ns).await;
    let (ca, other_ca) = (Ca::new("cellnet test CA"), Ca::new("another CA"));
    let ip = |last: u8| addr(last).to_string();
    let right = odl_tls(20, &ca.server(&[&ip(20)]));
    let renamed = odl_tls(21, &ca.server(&["other.example"]));
    let mut expired = odl_tls(22, &ca.expired(&[&ip(22)]));
    let rotated = odl_tls(23, &ca.server(&[&ip(23)]));
    let unverified = odl_tls(24, &other_ca.server(&["other.example"]));

    let applied = Instant::now();
    cp.apply(
        ns,
        &[
            credentials("odl-admin"),
            ca_secret("odl-ca", &ca.pem),
            ca_secret("odl-rotating-ca", &other_ca.pem),
            odl_endpoint("right-ca", 20, &right, Some("odl-ca"), false),
            odl_endpoint("other-name", 21, &renamed, Some("odl-ca"), false),
            odl_endpoint("expired", 22, &expired, Some("odl-ca"), false),
            odl_endpoint("wrong-ca", 23, &rotated, Some("odl-rotating-ca"), false),
            odl_endpoint("skip-verify", 24, &unverified, None, true),
            // The endpoint with the wrong CA is in use: its interconnect reports the failure too.
            manifests::endpoint("dc")
                .cell("dc")
                .address(addr(29))
                .asn(asn(29))
                .port(BGP_PORT)
                .yaml(),
            interconnect("odl-dc", "wrong-ca", "dc").yaml(),
        ]
        .join("---\n"),
    );

    let (_, took) = wait_ready::<InfraEndpoint>(cp, ns, "right-ca", TIMEOUT);
    report(&format!(
        "OpenDaylight, right CA: Ready after {:.1} s",
        took.as_secs_f64()
    ));
    wait_ready::<InfraEndpoint>(cp, ns, "skip-verify", TIMEOUT);
    assert!(
        !unverified.requests().is_empty(),
        "requests over the unverified connection"
    );

    let message = expect_tls_failure::<InfraEndpoint>(
        cp,
        ns,
        "other-name",
        &["cell cell21", "not valid for the host name", &ip(21)],
    );
    assert!(message.contains("other.example"), "{message}");
    expect_tls_failure::<InfraEndpoint>(cp, ns, "expired", &["cell cell22", "has expired"]);
    expect_tls_failure::<InfraEndpoint>(cp, ns, "wrong-ca", &["cell cell23", "not signed by a trusted CA"]);
    expect_tls_failure::<CellInterconnect>(cp, ns, "odl-dc", &["cell23", "not signed by a trusted CA"]);
    report(&format!(
        "OpenDaylight: all endpoints settled {:.1} s after apply",
        applied.elapsed().as_secs_f64()
    ));
    // Refused in the handshake: not one HTTP request reached the servers, credentials included.
    for server in [&renamed, &expired, &rotated] {
        assert!(server.requests().is_empty(), "{:?}", server.requests());
        assert!(server.failed_handshakes() > 0);
    }

    // The expired certificate renewed on the server, nothing changed in Kubernetes: the speaker
    // watcher's retries (its own backoff, at most a minute apart) find it trusted again and
    // requeue the endpoint.
    let renewed = ca.server(&[&ip(22)]);
    expired.renew_certificate(&renewed.0, &renewed.1);

    let (_, took) = wait_ready::<InfraEndpoint>(cp, ns, "expired", RENEWED_TIMEOUT);
    report(&format!(
        "OpenDaylight, certificate renewed on the server: endpoint Ready after {:.1} s",
        took.as_secs_f64()
    ));

    // Not retried in a storm: count the refused handshakes over a window.
    let window = Duration::from_secs(10);
    let before = rotated.failed_handshakes();
    std::thread::sleep(window);
    let attempts = rotated.failed_handshakes() - before;
    report(&format!(
        "OpenDaylight, wrong CA: {attempts} handshakes in {} s (endpoint, interconnect and speaker watcher)",
        window.as_secs()
    ));
    assert!(
        attempts <= 15,
        "{attempts} handshakes in {window:?}: retried in a storm"
    );

    // The CA rotated in the Secret: endpoint and interconnect recover, the neighbour is created.
    cp.apply(ns, &ca_secret("odl-rotating-ca", &ca.pem));
    let (_, took) = wait_ready::<CellInterconnect>(cp, ns, "odl-dc", TIMEOUT);
    report(&format!(
        "OpenDaylight, CA Secret fixed: interconnect Ready after {:.1} s (no controller restart)",
        took.as_secs_f64()
    ));
    let (_, took) = wait_ready::<InfraEndpoint>(cp, ns, "wrong-ca", TIMEOUT);
    report(&format!(
        "OpenDaylight, CA Secret fixed: endpoint Ready {:.1} s later",
        took.as_secs_f64()
    ));
    assert_eq!(rotated.neighbor_addresses(), [ip(29)]);
    assert!(renamed.requests().is_empty(), "{:?}", renamed.requests());
}
