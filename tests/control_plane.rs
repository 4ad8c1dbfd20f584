//! The test control plane itself: a real etcd and kube-apiserver, reached by kube-rs and kubectl.
mod support;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, PostParams};

#[tokio::test]
async fn configmap_crud_through_the_client() {
    let cp = support::control_plane();
    let client = cp.client().await;
    assert!(support::namespace(cp, "cp-configmaps").await, "a new namespace");
    let api: Api<ConfigMap> = Api::namespaced(client, "cp-configmaps");
    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some("cells".into()),
            ..Default::default()
        },
        data: Some([("cell1".to_string(), "127.0.0.11".to_string())].into()),
        ..Default::default()
    };
    api.create(&PostParams::default(), &cm).await.expect("create");
    let got = api.get("cells").await.expect("get");
    assert_eq!(got.data.unwrap()["cell1"], "127.0.0.11");
    let names: Vec<String> = api
        .list(&ListParams::default())
        .await
        .expect("list")
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect();
    assert!(names.contains(&"cells".to_string()), "listed: {names:?}");
    api.delete("cells", &DeleteParams::default())
        .await
        .expect("delete");
    let err = api.get("cells").await.expect_err("gone after delete");
    assert!(matches!(err, kube::Error::Api(ref s) if s.code == 404), "{err}");
}

#[tokio::test]
async fn lease_crud_through_the_client() {
    let cp = support::control_plane();
    let client = cp.client().await;
    assert!(support::namespace(cp, "cp-leases").await, "a new namespace");
    let api: Api<Lease> = Api::namespaced(client, "cp-leases");
    let lease = Lease {
        metadata: ObjectMeta {
            name: Some("cellnet-leader".into()),
            ..Default::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some("replica-a".into()),
            lease_duration_seconds: Some(15),
            ..Default::default()
        }),
    };
    api.create(&PostParams::default(), &lease).await.expect("create");
    let mut got = api.get("cellnet-leader").await.expect("get");
    assert_eq!(
        got.spec.as_ref().unwrap().holder_identity.as_deref(),
        Some("replica-a")
    );
    got.spec.as_mut().unwrap().holder_identity = Some("replica-b".into());
    let replaced = api
        .replace("cellnet-leader", &PostParams::default(), &got)
        .await
        .expect("replace");
    assert_eq!(
        replaced.spec.unwrap().holder_identity.as_deref(),
        Some("replica-b")
    );
    // A stale resourceVersion must conflict: leader election relies on it.
    let stale = api.replace("cellnet-leader", &PostParams::default(), &got).await;
    assert!(
        matches!(stale, Err(kube::Error::Api(ref s)) if s.code == 409),
        "{stale:?}"
    );
    api.delete("cellnet-leader", &DeleteParams::default())
        .await
        .expect("delete");
}

#[test]
fn kubectl_reads_readyz_and_reports_the_built_version() {
    let cp = support::control_plane();
    let (ok, out, err) = cp.kubectl_run(&["get", "--raw", "/readyz"]);
    assert!(ok, "kubectl get --raw /readyz failed: {err}");
    assert_eq!(out.trim(), "ok");
    let (ok, out, err) = cp.kubectl_run(&["version", "-o", "json"]);
    assert!(ok, "kubectl version failed: {err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("version json");
    let client = v["clientVersion"]["gitVersion"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let server = v["serverVersion"]["gitVersion"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(server.starts_with("v1.3"), "server version {server:?}");
    assert_eq!(
        client, server,
        "kubectl is built with the server, so versions match"
    );
}

#[test]
fn rbac_is_enforced_for_a_non_admin_identity() {
    let cp = support::control_plane();
    let (ok, out, _) = cp.kubectl_run(&["auth", "can-i", "delete", "secrets", "-A"]);
    assert!(ok && out.trim() == "yes", "admin may delete secrets: {out}");

    // A real client-certificate identity with no bindings: RBAC must deny it.
    let kubeconfig = cp.kubeconfig_for("alice", &["cellnet:testers"]);
    let denied = cp
        .kubectl()
        .env("KUBECONFIG", &kubeconfig)
        .args(["auth", "can-i", "list", "pods", "-n", "default"])
        .output()
        .expect("kubectl");
    assert_eq!(String::from_utf8_lossy(&denied.stdout).trim(), "no");
    assert!(!denied.status.success(), "can-i exits non-zero on 'no'");
    let forbidden = cp
        .kubectl()
        .env("KUBECONFIG", &kubeconfig)
        .args(["get", "configmaps", "-n", "default"])
        .output()
        .expect("kubectl");
    let stderr = String::from_utf8_lossy(&forbidden.stderr);
    assert!(
        stderr.contains("forbidden") && stderr.contains("alice"),
        "{stderr}"
    );

    // Bind a role and the same identity is allowed exactly that. (Not the built-in `view`: it is
    // aggregated, and without a kube-controller-manager nothing fills its rules.)
    for args in [
        &[
            "create",
            "role",
            "pod-lister",
            "--verb=list",
            "--resource=pods",
            "-n",
            "default",
        ][..],
        &[
            "create",
            "rolebinding",
            "alice-pods",
            "--role=pod-lister",
            "--user=alice",
            "-n",
            "default",
        ][..],
    ] {
        let (ok, _, err) = cp.kubectl_run(args);
        assert!(ok, "{err}");
    }
    // The authorizer sees a new binding through its informer: allow it a moment (bounded).
    support::wait_for(
        "the new binding to take effect",
        std::time::Duration::from_secs(10),
        || {
            let allowed = cp
                .kubectl()
                .env("KUBECONFIG", &kubeconfig)
                .args(["auth", "can-i", "list", "pods", "-n", "default"])
                .output()
                .expect("kubectl");
            let answer = String::from_utf8_lossy(&allowed.stdout).trim().to_string();
            ((answer == "yes").then_some(()), answer)
        },
    );
}

/// cellnet's Event recorder: two notes of one reason on one object are two Events (kube-runtime
/// 5's recorder counted the second on the first and its note was never shown); the same note
/// again is counted on its Event (`series.count`).
#[tokio::test]
async fn events_with_another_note_are_not_folded_into_the_first() {
    use cellnet::controller::events::Recorder;
    use k8s_openapi::api::events::v1::Event as K8sEvent;
    use kube::Resource as _;
    use kube::runtime::events::{Event, EventType, Reporter};

    let cp = support::control_plane();
    let client = cp.client().await;
    let ns = "cp-events";
    support::namespace(cp, ns).await;
    let cm = Api::<ConfigMap>::namespaced(client.clone(), ns)
        .create(
            &PostParams::default(),
            &ConfigMap {
                metadata: ObjectMeta {
                    name: Some("link".into()),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "cellnet-test".into(),
            instance: None,
        },
    );
    let note = |text: &str| Event {
        type_: EventType::Normal,
        reason: "PeerCreated".into(),
        note: Some(text.into()),
        action: "ConfigurePeer".into(),
        secondary: None,
    };
    let reference = cm.object_ref(&());
    for text in [
        "cell cell2: created BGP peer",
        "cell cell1: created BGP peer",
        "cell cell2: created BGP peer",
    ] {
        recorder.publish(&note(text), &reference).await.unwrap();
    }
    let events = Api::<K8sEvent>::namespaced(client, ns)
        .list(&ListParams::default())
        .await
        .unwrap();
    let mut seen: Vec<(String, i32)> = events
        .items
        .iter()
        .map(|e| {
            let count = e.series.as_ref().map_or(1, |s| s.count);
            (e.note.clone().unwrap_or_default(), count)
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("cell cell1: created BGP peer".to_string(), 1),
            ("cell cell2: created BGP peer".to_string(), 2)
        ]
    );
}
