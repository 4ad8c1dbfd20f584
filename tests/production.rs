//! Running in production, on a real API server with real gobgpd cells (127.0.3.x, BGP port 1790):
//!
//! - least privilege: the controller runs as the ServiceAccount of deploy/ (its RBAC, nothing
//!   else) through the main flow, and `kubectl auth can-i` shows what that identity cannot do;
//! - `/metrics`, `/healthz`, `/readyz` scraped over HTTP;
//! - kstatus and the Argo CD health check read objects the controller wrote;
//! - leader election: kill -9 the leader, the standby takes over and reconciles; SIGTERM releases
//!   the Lease; a leader whose Lease is taken steps down.
//!
//! The controllers watch every namespace, so the tests of this binary take turns (one lock).
mod ops;
mod support;

use std::net::Ipv4Addr;
use std::process::Command;
use std::time::{Duration, Instant};

use cellnet::api::{CellInterconnect, InfraEndpoint};
use ops::{Replica, argocd_health, kstatus, repo, run, run_with_input, sample};
use serde_json::{Value, json};
use support::gobgp::Gobgpd;
use support::manifests::{self, BGP_PORT, interconnect};
use support::{
    ControlPlane, condition, namespace, report, wait_condition, wait_condition_json, wait_for, wait_ready,
};

const READY_TIMEOUT: Duration = Duration::from_secs(90);
const SA: &str = "system:serviceaccount:cellnet-system:cellnet-controller";

static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn addr(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 3, last)
}

fn managed_endpoint(name: &str, cell: &str, last: u8, speaker: &Gobgpd) -> String {
    external(name, cell, last).gobgp(&speaker.api_url()).yaml()
}

fn external(name: &str, cell: &str, last: u8) -> manifests::Endpoint {
    manifests::endpoint(name)
        .cell(cell)
        .address(addr(last))
        .asn(65300 + u32::from(last))
        .port(BGP_PORT)
}

fn kubectl(cp: &ControlPlane) -> Command {
    let mut c = Command::new(cp.assets.join("kubectl"));
    c.env("KUBECONFIG", &cp.kubeconfig);
    c
}

/// The kustomize base with cluster-wide Secret access (the test's objects live in their own
/// namespaces), applied as docs/install.md says.
fn install_kustomize_base(cp: &ControlPlane) {
    let yaml = ops::kustomize_with(&cp.assets.join("kubectl"), &["cluster-wide-secrets"]);
    let (ok, out, err) = run_with_input(kubectl(cp).args(["apply", "-f", "-"]), &yaml);
    assert!(ok, "kubectl apply: {err}\n{out}");
}

fn can_i(cp: &ControlPlane, args: &[&str]) -> String {
    let mut cmd = kubectl(cp);
    cmd.args([
        "auth",
        "can-i",
        "--as",
        SA,
        "--as-group",
        "system:serviceaccounts",
    ])
    .args(args);
    let (_, out, err) = run(&mut cmd);
    let answer = out.trim().to_string();
    assert!(
        answer == "yes" || answer == "no",
        "kubectl auth can-i {args:?}: {out} {err}"
    );
    answer
}

fn get(cp: &ControlPlane, ns: &str, what: &str) -> Value {
    cp.get_json(ns, what)
        .unwrap_or_else(|| panic!("{ns}/{what} not found"))
}

/// Deletes everything of cellnet's kinds in `ns` and waits until the finalizers are gone, so that
/// the next test's controller never sees these objects.
fn clean_up(cp: &ControlPlane, ns: &str) {
    let (ok, _, err) = run(kubectl(cp).args([
        "delete",
        "-n",
        ns,
        "cellinterconnects,infraendpoints",
        "--all",
        "--wait=false",
    ]));
    assert!(ok, "{err}");
    wait_for(&format!("{ns} emptied"), Duration::from_secs(60), || {
        let (_, out, _) =
            run(kubectl(cp).args(["get", "-n", ns, "cellinterconnects,infraendpoints", "-o", "name"]));
        (out.trim().is_empty().then_some(()), out)
    });
}

fn lease(cp: &ControlPlane, ns: &str, name: &str) -> Value {
    get(cp, ns, &format!("lease/{name}"))
}

fn holder(cp: &ControlPlane, ns: &str, name: &str) -> String {
    lease(cp, ns, name)["spec"]["holderIdentity"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn least_privilege_identity_runs_the_main_flow_with_metrics_health_and_gitops_status() {
    let _turn = TURN.lock().await;
    let cp = support::control_plane();
    cp.install_crds();
    install_kustomize_base(cp);

    // What the ServiceAccount may do: exactly the controller's calls.
    let ns = "prod-least-privilege";
    namespace(cp, ns).await;
    for (args, want) in [
        (&["list", "secrets", "-A"][..], "yes"),
        (&["watch", "secrets", "-A"], "yes"),
        (&["get", "secrets", "-n", ns], "yes"),
        (&["delete", "secrets", "-n", ns], "no"),
        (&["create", "secrets", "-n", ns], "no"),
        (&["update", "secrets", "-n", ns], "no"),
        (&["patch", "secrets", "-n", ns], "no"),
        (&["get", "pods", "-n", ns], "no"),
        (&["create", "pods", "-n", ns], "no"),
        (&["delete", "pods", "-n", ns], "no"),
        (&["get", "configmaps", "-n", ns], "no"),
        (&["get", "nodes"], "no"),
        (&["list", "namespaces"], "no"),
        (&["patch", "cellinterconnects.cellnet.io", "-n", ns], "yes"),
        (
            &[
                "patch",
                "cellinterconnects.cellnet.io",
                "-n",
                ns,
                "--subresource",
                "status",
            ],
            "yes",
        ),
        (
            &[
                "patch",
                "infraendpoints.cellnet.io",
                "-n",
                ns,
                "--subresource",
                "status",
            ],
            "yes",
        ),
        (&["create", "cellinterconnects.cellnet.io", "-n", ns], "no"),
        (&["delete", "cellinterconnects.cellnet.io", "-n", ns], "no"),
        (&["update", "cellinterconnects.cellnet.io", "-n", ns], "no"),
        (&["delete", "infraendpoints.cellnet.io", "-n", ns], "no"),
        (&["create", "events.events.k8s.io", "-n", ns], "yes"),
        (&["delete", "events.events.k8s.io", "-n", ns], "no"),
        (&["create", "events", "-n", ns], "no"),
        (
            &["create", "leases.coordination.k8s.io", "-n", "cellnet-system"],
            "yes",
        ),
        (
            &[
                "update",
                "leases.coordination.k8s.io/cellnet-controller",
                "-n",
                "cellnet-system",
            ],
            "yes",
        ),
        (
            &[
                "update",
                "leases.coordination.k8s.io/other",
                "-n",
                "cellnet-system",
            ],
            "no",
        ),
        (&["create", "leases.coordination.k8s.io", "-n", ns], "no"),
        (
            &[
                "delete",
                "leases.coordination.k8s.io/cellnet-controller",
                "-n",
                "cellnet-system",
            ],
            "no",
        ),
        (
            &["create", "customresourcedefinitions.apiextensions.k8s.io"],
            "no",
        ),
        (&["create", "clusterrolebindings.rbac.authorization.k8s.io"], "no"),
    ] {
        assert_eq!(
            can_i(cp, args),
            want,
            "kubectl auth can-i {args:?} as the controller's ServiceAccount"
        );
    }

    // The controller with that identity (a client certificate for the ServiceAccount's user name
    // and groups: exactly what RBAC sees for its token), leader election on, as in the manifests.
    let with_colons = cp.kubeconfig_for(
        SA,
        &[
            "system:serviceaccounts",
            "system:serviceaccounts:cellnet-system",
            "system:authenticated",
        ],
    );
    // KUBECONFIG is a colon-separated list: the file's name must not carry the user's colons.
    let kubeconfig = cp.dir.join("kubeconfig-cellnet-controller-sa");
    std::fs::copy(&with_colons, &kubeconfig).unwrap();
    let mut controller = Replica::start(
        "cellnet-controller-0",
        &kubeconfig,
        &[
            "--leader-elect",
            "--leader-election-namespace=cellnet-system",
            "--log-format=text",
        ],
    );
    let began = Instant::now();
    controller.wait_log("caches synced", Duration::from_secs(30));
    report(&format!(
        "as the ServiceAccount: leading with synced caches after {:.1} s",
        began.elapsed().as_secs_f64()
    ));
    let (code, body) = controller.get("/healthz").unwrap();
    assert_eq!((code, body.as_str()), (200, "ok\n"));
    let (code, body) = controller.get("/readyz").unwrap();
    assert_eq!((code, body.as_str()), (200, "ok: leading; caches synced\n"));
    assert_eq!(controller.get("/nothing").unwrap().0, 404);

    // The main flow: two managed cells, one interconnect, Ready.
    let a = Gobgpd::start("prod-cell1", addr(1), None);
    let b = Gobgpd::start("prod-cell2", addr(2), None);
    cp.apply(
        ns,
        &[
            manifests::secret("bgp-password", &[("password", "s3cret")]),
            managed_endpoint("ep-a", "cell1", 1, &a),
            managed_endpoint("ep-b", "cell2", 2, &b),
            interconnect("a-b", "ep-a", "ep-b")
                .password("bgp-password", "password")
                .yaml(),
        ]
        .join("---\n"),
    );
    // Raw objects from here on: kstatus and the Argo CD health check read them as JSON.
    let (ready, took) = wait_condition_json(cp, ns, "cic/a-b", "Ready", "True", None, READY_TIMEOUT);
    report(&format!(
        "least privilege: a-b Ready after {:.1} s",
        took.as_secs_f64()
    ));
    let log = controller.log();
    assert!(
        !log.to_lowercase().contains("forbidden"),
        "an RBAC denial in the log:\n{log}"
    );

    // GitOps: kstatus and the Argo CD health check on what the controller wrote.
    assert_eq!(
        ready["status"]["observedGeneration"],
        ready["metadata"]["generation"]
    );
    assert_eq!(kstatus(&ready).0, "Current", "{}", ready["status"]);
    let (health, message) = argocd_health(&ready);
    assert_eq!(health, "Healthy", "{message}");
    assert!(message.contains("Established"), "{message}");
    let (ep, _) = wait_condition_json(cp, ns, "iep/ep-a", "Ready", "True", None, Duration::from_secs(30));
    assert_eq!(
        (kstatus(&ep).0, argocd_health(&ep).0.as_str()),
        ("Current", "Healthy")
    );

    // Stalled: a missing endpoint needs a change by someone; kstatus Failed, Argo CD Degraded.
    cp.apply(ns, &interconnect("a-missing", "ep-a", "ep-gone").yaml());
    let (stalled, _) = wait_condition_json(
        cp,
        ns,
        "cic/a-missing",
        "Stalled",
        "True",
        None,
        Duration::from_secs(30),
    );
    assert_eq!(kstatus(&stalled).0, "Failed", "{}", stalled["status"]);
    let (health, message) = argocd_health(&stalled);
    assert_eq!(health, "Degraded", "{message}");
    assert!(message.contains("ep-gone"), "{message}");

    // Reconciling: the remote router is not there, the session cannot come up yet.
    cp.apply(
        ns,
        &[
            external("ep-x", "dc1", 9).yaml(),
            interconnect("a-x", "ep-a", "ep-x").yaml(),
        ]
        .join("---\n"),
    );
    let (progressing, _) = wait_condition_json(
        cp,
        ns,
        "cic/a-x",
        "Reconciling",
        "True",
        None,
        Duration::from_secs(30),
    );
    assert_eq!(kstatus(&progressing).0, "InProgress", "{}", progressing["status"]);
    assert_eq!(condition(&progressing, "Ready").unwrap().0, "False");
    assert_eq!(argocd_health(&progressing).0, "Progressing");

    // Suspended: spec.suspend.
    let (ok, _, err) = run(kubectl(cp).args([
        "patch",
        "-n",
        ns,
        "cic/a-x",
        "--type=merge",
        "-p",
        r#"{"spec":{"suspend":true}}"#,
    ]));
    assert!(ok, "{err}");
    let (suspended, _) = wait_condition_json(
        cp,
        ns,
        "cic/a-x",
        "Ready",
        "False",
        Some("Suspended"),
        Duration::from_secs(30),
    );
    assert_eq!(
        suspended["status"]["observedGeneration"],
        suspended["metadata"]["generation"]
    );
    assert_eq!(kstatus(&suspended).0, "Current", "suspension is a steady state");
    assert_eq!(argocd_health(&suspended).0, "Suspended");

    // Events went through events.k8s.io with the controller's identity.
    let (ok, out, err) = run(kubectl(cp).args(["get", "events.events.k8s.io", "-n", ns, "-o", "json"]));
    assert!(ok, "{err}");
    let events: Value = serde_json::from_str(&out).unwrap();
    assert!(
        events["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["reportingController"] == "cellnet-controller"),
        "no event from cellnet-controller: {out}"
    );

    // /metrics over HTTP: controller-runtime's names and cellnet's own.
    let (code, metrics) = controller.get("/metrics").unwrap();
    assert_eq!(code, 200);
    for kind in ["CellInterconnect", "InfraEndpoint"] {
        let total = sample(
            &metrics,
            "controller_runtime_reconcile_total",
            &[("controller", kind)],
        );
        assert!(
            total.unwrap_or(0.0) > 0.0,
            "no reconciles of {kind} counted:\n{metrics}"
        );
        let count = sample(
            &metrics,
            "controller_runtime_reconcile_time_seconds_count",
            &[("controller", kind)],
        );
        assert!(
            count.unwrap_or(0.0) > 0.0,
            "no reconcile durations of {kind}:\n{metrics}"
        );
        assert!(
            metrics.contains(&format!(
                "controller_runtime_reconcile_time_seconds_bucket{{le=\"+Inf\",controller=\"{kind}\"}}"
            )) || metrics.contains(&format!(
                "controller_runtime_reconcile_time_seconds_bucket{{controller=\"{kind}\",le=\"+Inf\"}}"
            )),
            "{metrics}"
        );
    }
    // Families without samples are not exposed (prometheus-client): the errors, sessions and drift
    // families are checked by the unit tests of src/metrics.rs.
    // controller-runtime's result values only.
    for line in metrics
        .lines()
        .filter(|l| l.starts_with("controller_runtime_reconcile_total{"))
    {
        assert!(
            ["success", "error", "requeue", "requeue_after"]
                .iter()
                .any(|r| line.contains(&format!("result=\"{r}\""))),
            "{line}"
        );
    }
    for line in [
        "# TYPE controller_runtime_reconcile counter",
        "# TYPE controller_runtime_reconcile_time_seconds histogram",
        "# TYPE cellnet_sdn_api_calls counter",
        "# TYPE cellnet_sdn_api_call_duration_seconds histogram",
    ] {
        assert!(metrics.contains(line), "missing {line:?}:\n{metrics}");
    }
    assert!(
        sample(&metrics, "cellnet_sdn_api_calls_total", &[]).unwrap_or(0.0) > 0.0,
        "{metrics}"
    );
    assert_eq!(
        sample(
            &metrics,
            "leader_election_master_status",
            &[("name", "cellnet-controller")]
        ),
        Some(1.0),
        "{metrics}"
    );
    assert!(
        metrics.trim_end().ends_with("# EOF"),
        "OpenMetrics text ends with # EOF"
    );

    // Objects go, finalizers removed by the controller with its narrow identity.
    clean_up(cp, ns);
    assert!(
        !controller.log().to_lowercase().contains("forbidden"),
        "{}",
        controller.log()
    );

    // SIGTERM: not ready any more, exits 0, gives the Lease up.
    assert_eq!(controller.terminate(), Some(0), "{}", controller.log());
    assert!(
        controller.log().contains("released the lease"),
        "{}",
        controller.log()
    );
    assert_eq!(holder(cp, "cellnet-system", "cellnet-controller"), "");
    drop((a, b));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_standby_takes_over_when_the_leader_dies_and_only_the_leader_reconciles() {
    let _turn = TURN.lock().await;
    let cp = support::control_plane();
    cp.install_crds();
    let (lease_ns, lease_name) = ("prod-failover-lease", "cellnet-failover");
    let ns = "prod-failover";
    namespace(cp, lease_ns).await;
    namespace(cp, ns).await;
    let lease_duration = Duration::from_secs(4);
    let retry = Duration::from_secs(1);
    let args = [
        "--leader-elect",
        "--leader-election-namespace=prod-failover-lease",
        "--leader-election-id=cellnet-failover",
        "--lease-duration=4s",
        "--renew-deadline=3s",
        "--retry-period=1s",
    ];
    let mut first = Replica::start("replica-1", &cp.kubeconfig, &args);
    first.wait_log("acquired the lease", Duration::from_secs(30));
    first.wait_log("caches synced", Duration::from_secs(30));
    let mut second = Replica::start("replica-2", &cp.kubeconfig, &args);
    second.wait_log("standing by", Duration::from_secs(30));
    assert!(holder(cp, lease_ns, lease_name).starts_with("replica-1_"));

    // Both are ready (the standby stands by correctly); only the leader reports leading.
    assert_eq!(
        first.get("/readyz").unwrap(),
        (200, "ok: leading; caches synced\n".to_string())
    );
    assert_eq!(
        second.get("/readyz").unwrap(),
        (200, "ok: standing by; another replica leads\n".to_string())
    );
    let gauge = |r: &Replica| {
        sample(
            &r.get("/metrics").unwrap().1,
            "leader_election_master_status",
            &[("name", lease_name)],
        )
    };
    assert_eq!((gauge(&first), gauge(&second)), (Some(1.0), Some(0.0)));

    let a = Gobgpd::start("prod-cell3", addr(3), None);
    let b = Gobgpd::start("prod-cell4", addr(4), None);
    cp.apply(
        ns,
        &[
            managed_endpoint("ep-a", "cell3", 3, &a),
            managed_endpoint("ep-b", "cell4", 4, &b),
            interconnect("a-b", "ep-a", "ep-b").yaml(),
        ]
        .join("---\n"),
    );
    wait_ready::<CellInterconnect>(cp, ns, "a-b", READY_TIMEOUT);
    // Only the leader runs controllers: the standby never reconciled, never wrote to a speaker.
    assert!(!second.log().contains("controllers started"), "{}", second.log());
    assert!(!second.log().contains("reconciled"), "{}", second.log());
    let standby_metrics = second.get("/metrics").unwrap().1;
    assert_eq!(
        sample(&standby_metrics, "controller_runtime_reconcile_total", &[]),
        None,
        "{standby_metrics}"
    );

    // Crash the leader; a new object appears while nobody leads.
    first.kill();
    let killed = Instant::now();
    cp.apply(
        ns,
        &[
            external("ep-x", "dc2", 5).yaml(),
            interconnect("b-x", "ep-b", "ep-x").yaml(),
        ]
        .join("---\n"),
    );
    second.wait_log("acquired the lease", lease_duration * 3);
    let takeover = killed.elapsed();
    wait_condition::<CellInterconnect>(
        cp,
        ns,
        "b-x",
        "LocalConfigured",
        "True",
        None,
        Duration::from_secs(30),
    );
    let reconciled = killed.elapsed();
    report(&format!(
        "failover: kill -9 -> standby leads after {:.1} s, new object reconciled after {:.1} s (lease {lease_duration:?})",
        takeover.as_secs_f64(),
        reconciled.as_secs_f64()
    ));
    // The standby waits one lease duration from the last renewal it saw (at most one renew interval
    // before the kill), plus one retry period for its next look.
    assert!(
        takeover <= lease_duration + retry * 2,
        "takeover took {takeover:?}"
    );
    assert!(
        reconciled <= lease_duration + retry * 2 + Duration::from_secs(5),
        "reconcile took {reconciled:?}"
    );
    assert!(holder(cp, lease_ns, lease_name).starts_with("replica-2_"));
    assert!(lease(cp, lease_ns, lease_name)["spec"]["leaseTransitions"].as_i64() >= Some(1));

    // Graceful: SIGTERM on the leader releases the Lease; a standby takes it at its next retry.
    let mut third = Replica::start("replica-3", &cp.kubeconfig, &args);
    third.wait_log("standing by", Duration::from_secs(30));
    let term = Instant::now();
    assert_eq!(second.terminate(), Some(0), "{}", second.log());
    assert!(second.log().contains("released the lease"), "{}", second.log());
    third.wait_log("acquired the lease", Duration::from_secs(10));
    let handover = term.elapsed();
    report(&format!(
        "SIGTERM on the leader -> standby leads after {:.1} s",
        handover.as_secs_f64()
    ));
    assert!(
        handover < lease_duration,
        "a released Lease is taken without waiting for expiry: {handover:?}"
    );
    third.wait_log("caches synced", Duration::from_secs(30));

    // Clean up while a leader runs (finalizers), then: a leader whose Lease is taken steps down.
    clean_up(cp, ns);
    // Optimistic concurrency: the leader may renew between our read and write; read again then.
    wait_for("the Lease taken by an intruder", Duration::from_secs(10), || {
        let mut lease_obj = lease(cp, lease_ns, lease_name);
        lease_obj["spec"]["holderIdentity"] = "intruder".into();
        lease_obj["spec"]["renewTime"] = chrono_now().into();
        lease_obj["spec"]["leaseDurationSeconds"] = 60.into();
        let (ok, _, err) = run_with_input(kubectl(cp).args(["replace", "-f", "-"]), &lease_obj.to_string());
        assert!(ok || err.contains("Conflict"), "{err}");
        (ok.then_some(()), err)
    });
    let code = third.wait_exit(Duration::from_secs(10));
    assert_eq!(
        code,
        Some(1),
        "a leader that lost its Lease exits non-zero:\n{}",
        third.log()
    );
    assert!(third.log().contains("leader election lost"), "{}", third.log());
    drop((a, b));
}

/// `rbac.secretNamespaces` of the chart: the controller's identity reads Secrets only in the listed
/// namespace (a Role there, nothing cluster-wide) and runs the main flow, BGP password included.
#[tokio::test(flavor = "multi_thread")]
async fn secret_access_narrowed_to_one_namespace_still_runs_the_main_flow() {
    let _turn = TURN.lock().await;
    let cp = support::control_plane();
    cp.install_crds();
    let (release_ns, ns) = ("cellnet-narrow", "prod-narrow");
    namespace(cp, release_ns).await;
    namespace(cp, ns).await;
    let (ok, yaml, err) = run(std::process::Command::new(ops::helm())
        .current_dir(repo())
        .args(["template", "narrow", "charts/cellnet", "--namespace", release_ns])
        .args([
            "--set",
            "crds.enabled=false",
            "--set",
            "serviceAccount.name=cellnet-narrow",
        ])
        .args(["--set", &format!("rbac.secretNamespaces={{{ns}}}")]));
    assert!(ok, "helm template: {err}");
    let (ok, out, err) = run_with_input(kubectl(cp).args(["apply", "-f", "-"]), &yaml);
    assert!(ok, "kubectl apply: {err}\n{out}");
    let user = "system:serviceaccount:cellnet-narrow:cellnet-narrow";
    let can = |args: &[&str]| {
        let (_, out, _) = run(kubectl(cp).args(["auth", "can-i", "--as", user]).args(args));
        out.trim().to_string()
    };
    assert_eq!(can(&["list", "secrets", "-A"]), "no");
    assert_eq!(can(&["get", "secrets", "-n", "default"]), "no");
    assert_eq!(can(&["watch", "secrets", "-n", ns]), "yes");
    assert_eq!(can(&["get", "secrets", "-n", ns]), "yes");
    assert_eq!(can(&["delete", "secrets", "-n", ns]), "no");

    let with_colons = cp.kubeconfig_for(
        user,
        &[
            "system:serviceaccounts",
            "system:serviceaccounts:cellnet-narrow",
            "system:authenticated",
        ],
    );
    let kubeconfig = cp.dir.join("kubeconfig-cellnet-narrow-sa");
    std::fs::copy(&with_colons, &kubeconfig).unwrap();
    let secret_ns_flag = format!("--secret-namespaces={ns}");
    let mut controller = Replica::start(
        "cellnet-narrow-0",
        &kubeconfig,
        &[
            "--leader-elect",
            "--leader-election-namespace=cellnet-narrow",
            &secret_ns_flag,
        ],
    );
    controller.wait_log("caches synced", Duration::from_secs(30));
    let a = Gobgpd::start("prod-cell6", addr(6), None);
    let b = Gobgpd::start("prod-cell7", addr(7), None);
    cp.apply(
        ns,
        &[
            manifests::secret("bgp-password", &[("password", "s3cret")]),
            managed_endpoint("ep-a", "cell6", 6, &a),
            managed_endpoint("ep-b", "cell7", 7, &b),
            interconnect("a-b", "ep-a", "ep-b")
                .password("bgp-password", "password")
                .yaml(),
        ]
        .join("---\n"),
    );
    let (ready, took) = wait_ready::<CellInterconnect>(cp, ns, "a-b", READY_TIMEOUT);
    report(&format!(
        "narrowed Secrets: a-b Ready after {:.1} s",
        took.as_secs_f64()
    ));
    let status = ready.status.as_ref();
    assert!(
        status.is_some_and(|s| s.applied_password_secret_version.is_some()),
        "{status:?}"
    );
    assert!(
        !controller.log().to_lowercase().contains("forbidden"),
        "{}",
        controller.log()
    );

    // A Secret in a namespace the identity may not read: the object says so in its status (as
    // docs/install.md promises), instead of a reconcile error only the log shows.
    let other = "prod-narrow-other";
    namespace(cp, other).await;
    cp.apply(
        other,
        &[
            manifests::secret("bgp-password", &[("password", "s3cret")]),
            external("ep-x", "cell8", 8).gobgp("http://127.0.3.8:1").yaml(),
            external("ep-y", "cell9", 9).yaml(),
            interconnect("x-y", "ep-x", "ep-y")
                .password("bgp-password", "password")
                .yaml(),
        ]
        .join("---\n"),
    );
    let (forbidden, took) = wait_condition::<CellInterconnect>(
        cp,
        other,
        "x-y",
        "Ready",
        "False",
        Some("SecretForbidden"),
        Duration::from_secs(30),
    );
    report(&format!(
        "narrowed Secrets: SecretForbidden in status after {:.1} s",
        took.as_secs_f64()
    ));
    let message = message_of(&forbidden, "Ready");
    assert!(
        message.contains("prod-narrow-other/bgp-password") && message.contains("rbac.secretNamespaces"),
        "names the Secret and the fix: {message}"
    );
    // Its speaker was never reachable: released without cleanup.
    let orphan = "cellnet.io/deletion-policy=Orphan";
    let (ok, _, err) = run(kubectl(cp).args(["annotate", "-n", other, "cic/x-y", orphan]));
    assert!(ok, "{err}");
    clean_up(cp, other);
    clean_up(cp, ns);
    assert_eq!(controller.terminate(), Some(0), "{}", controller.log());
    drop((a, b));
}

/// The chart's `allowUnlabelledSecrets` and `endpointAllow`, run as the controller's flags: an
/// unlabelled BGP password is used (the single-tenant waiver), and an SDN API or a Keystone
/// outside the list gets `EndpointNotAllowed` without a single connection (a listener counts).
#[tokio::test(flavor = "multi_thread")]
async fn the_charts_allowlist_and_secret_waiver_as_the_controller_runs_them() {
    let _turn = TURN.lock().await;
    let cp = support::control_plane();
    cp.install_crds();
    let ns = "prod-trust";
    namespace(cp, ns).await;
    let outside = std::net::TcpListener::bind("127.0.3.20:0").expect("bind 127.0.3.20");
    let outside_url = format!("http://{}", outside.local_addr().unwrap());
    let (ok, yaml, err) = run(std::process::Command::new(ops::helm())
        .current_dir(repo())
        .args([
            "template",
            "trust",
            "charts/cellnet",
            "--namespace",
            "cellnet-trust",
        ])
        .args(["--set", "endpointAllow={127.0.0.1},allowUnlabelledSecrets=true"]));
    assert!(ok, "helm template: {err}");
    let docs = ops::yaml_docs(&yaml);
    let deployment = ops::find(&docs, "Deployment", "cellnet-controller");
    let args: Vec<String> = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .filter(|a| a.starts_with("--endpoint-allow") || a.starts_with("--allow-unlabelled"))
        .map(String::from)
        .collect();
    assert_eq!(args, ["--endpoint-allow=127.0.0.1", "--allow-unlabelled-secrets"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut controller = Replica::start("cellnet-trust-0", &cp.kubeconfig, &args);
    controller.wait_log("caches synced", Duration::from_secs(30));
    assert!(
        !controller.log().contains("no --endpoint-allow"),
        "{}",
        controller.log()
    );

    let a = Gobgpd::start("prod-cell10", addr(10), None);
    let b = Gobgpd::start("prod-cell11", addr(11), None);
    let clouds = format!(
        "clouds:\n  c:\n    auth:\n      auth_url: {outside_url}/v3\n      username: u\n      password: p\n"
    );
    let neutron = json!({"cloudSecretRef": {"name": "clouds"}, "cloud": "c",
        "network": {"physicalNetwork": "p"}, "subnet": {"cidr": "198.51.100.64/28"}});
    cp.apply(
        ns,
        &[
            manifests::unlabelled_secret("bgp-password", &[("password", "s3cret")]),
            manifests::unlabelled_secret("clouds", &[("clouds.yaml", &clouds)]),
            managed_endpoint("ep-a", "cell10", 10, &a),
            managed_endpoint("ep-b", "cell11", 11, &b),
            interconnect("a-b", "ep-a", "ep-b")
                .password("bgp-password", "password")
                .yaml(),
            external("ep-far", "cell12", 12).gobgp(&outside_url).yaml(),
            interconnect("far-b", "ep-far", "ep-b").yaml(),
            manifests::endpoint("ep-ks")
                .cell("cell13")
                .address("198.51.100.66")
                .asn(65313)
                .neutron(neutron)
                .yaml(),
        ]
        .join("---\n"),
    );
    let (_, took) = wait_ready::<CellInterconnect>(cp, ns, "a-b", READY_TIMEOUT);
    report(&format!(
        "waiver: a-b Ready with an unlabelled password after {:.1} s",
        took.as_secs_f64()
    ));
    let (far, _) = wait_condition::<InfraEndpoint>(
        cp,
        ns,
        "ep-far",
        "Ready",
        "False",
        Some("EndpointNotAllowed"),
        Duration::from_secs(30),
    );
    let message = message_of(&far, "Ready");
    assert!(
        message.contains("127.0.3.20") && message.contains("127.0.0.1"),
        "{message}"
    );
    let (ks, _) = wait_condition::<InfraEndpoint>(
        cp,
        ns,
        "ep-ks",
        "NeutronConfigured",
        "False",
        Some("EndpointNotAllowed"),
        Duration::from_secs(30),
    );
    assert!(message_of(&ks, "NeutronConfigured").contains("auth.auth_url"));
    wait_condition::<CellInterconnect>(
        cp,
        ns,
        "far-b",
        "Ready",
        "False",
        Some("EndpointNotAllowed"),
        Duration::from_secs(30),
    );
    // Let a late connection arrive (the speaker poll runs every 10 s), then count them all.
    std::thread::sleep(Duration::from_secs(2));
    outside.set_nonblocking(true).unwrap();
    let connections = std::iter::from_fn(|| outside.accept().ok()).count();
    assert_eq!(connections, 0, "connections to the API outside the list");
    // Deletion does not wait for a speaker cellnet may not call.
    clean_up(cp, ns);
    assert_eq!(controller.terminate(), Some(0), "{}", controller.log());
    drop((a, b));
}

/// The message of condition `type_` of a typed object.
fn message_of(obj: &impl serde::Serialize, type_: &str) -> String {
    let obj = serde_json::to_value(obj).unwrap();
    condition(&obj, type_)
        .unwrap_or_else(|| panic!("no {type_} in {obj}"))
        .2
}

/// Now as RFC 3339 with microseconds (a Lease's MicroTime).
fn chrono_now() -> String {
    let (_, out, _) = run(Command::new("date").args(["-u", "+%Y-%m-%dT%H:%M:%S.%6NZ"]));
    out.trim().to_string()
}
