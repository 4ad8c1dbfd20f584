//! Packaging, hardened (issue 18 items 8 and 14): the opt-in parts of both installs: the kustomize
//! components (cluster-wide Secret access, a NetworkPolicy), and the chart's NetworkPolicy (egress
//! from the allowlist), PodDisruptionBudget and anti-affinity with more than one replica, metrics
//! on localhost or behind kube-rbac-proxy. Every rendering is sent to a real API server (server-side
//! dry-run) in a namespace that enforces the restricted Pod Security Standard.
mod ops;
mod support;

use std::process::Command;

use ops::{
    assert_cluster_wide_secrets, find, helm_run, helm_template, kinds, kustomize_with, run_with_input,
    yaml_docs,
};
use serde_json::{Value, json};

fn kubectl() -> Command {
    let cp = support::control_plane();
    let mut c = Command::new(cp.assets.join("kubectl"));
    c.env("KUBECONFIG", &cp.kubeconfig);
    c
}

fn kubectl_path() -> std::path::PathBuf {
    support::control_plane().assets.join("kubectl")
}

fn pod_spec(docs: &[Value]) -> &Value {
    &find(docs, "Deployment", "cellnet-controller")["spec"]["template"]["spec"]
}

fn controller_args(docs: &[Value]) -> Vec<String> {
    pod_spec(docs)["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

fn has(docs: &[Value], kind: &str) -> bool {
    docs.iter().any(|d| d["kind"] == kind)
}

/// The egress rules of the NetworkPolicy as (CIDRs or "namespaces", ports).
fn egress(policy: &Value) -> Vec<(Vec<String>, Vec<String>)> {
    policy["spec"]["egress"]
        .as_array()
        .unwrap()
        .iter()
        .map(|rule| {
            let to = rule["to"]
                .as_array()
                .unwrap()
                .iter()
                .map(|peer| {
                    peer["ipBlock"]["cidr"]
                        .as_str()
                        .map_or("namespaces".to_string(), String::from)
                })
                .collect();
            let ports = rule["ports"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .map(|p| format!("{}/{}", p["port"], p["protocol"].as_str().unwrap()))
                        .collect()
                })
                .unwrap_or_default();
            (to, ports)
        })
        .collect()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn kustomize_components_open_secrets_cluster_wide_and_add_a_network_policy() {
    let docs = yaml_docs(&kustomize_with(
        &kubectl_path(),
        &["cluster-wide-secrets", "network-policy"],
    ));
    assert_cluster_wide_secrets(&docs);
    assert!(
        !docs.iter().any(|d| d["metadata"]["name"] == "cellnet-secrets"),
        "the per-namespace Role is gone: {:?}",
        kinds(&docs)
    );
    let args = controller_args(&docs);
    assert!(
        !args.iter().any(|a| a.starts_with("--secret-namespaces")),
        "{args:?}"
    );
    let policy = find(&docs, "NetworkPolicy", "cellnet-controller");
    assert_eq!(policy["metadata"]["namespace"], "cellnet-system");
    assert_eq!(policy["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
    let labels = &find(&docs, "Deployment", "cellnet-controller")["spec"]["template"]["metadata"]["labels"];
    for (k, v) in policy["spec"]["podSelector"]["matchLabels"].as_object().unwrap() {
        assert_eq!(&labels[k], v, "selects the controller's pods: {k}");
    }
    assert_eq!(policy["spec"]["ingress"][0]["ports"][0]["port"], "metrics");
    // Each component alone builds too.
    for c in ["cluster-wide-secrets", "network-policy"] {
        let docs = yaml_docs(&kustomize_with(&kubectl_path(), &[c]));
        assert_eq!(
            has(&docs, "NetworkPolicy"),
            c == "network-policy",
            "{c}: {:?}",
            kinds(&docs)
        );
    }
}

#[test]
fn helm_spreads_replicas_and_budgets_disruptions() {
    // One replica: nothing to spread, no budget (it would block every drain).
    let docs = helm_template(&["--set", "replicas=1,leaderElection.enabled=false"]);
    assert!(!has(&docs, "PodDisruptionBudget"), "{:?}", kinds(&docs));
    assert!(pod_spec(&docs)["affinity"].is_null());
    // Three, required spread and a budget of two.
    let docs = helm_template(&[
        "--set",
        "replicas=3,podAntiAffinity=hard,podDisruptionBudget.minAvailable=2",
    ]);
    assert_eq!(
        find(&docs, "PodDisruptionBudget", "cellnet-controller")["spec"]["minAvailable"],
        2
    );
    let anti = &pod_spec(&docs)["affinity"]["podAntiAffinity"];
    let term = &anti["requiredDuringSchedulingIgnoredDuringExecution"][0];
    assert_eq!(term["topologyKey"], "kubernetes.io/hostname", "{anti}");
    assert_eq!(
        term["labelSelector"]["matchLabels"]["app.kubernetes.io/instance"],
        "cellnet"
    );
    // Off, and the user's own affinity wins.
    let docs = helm_template(&["--set", "podAntiAffinity=none,podDisruptionBudget.enabled=false"]);
    assert!(pod_spec(&docs)["affinity"].is_null());
    assert!(!has(&docs, "PodDisruptionBudget"));
    let own = json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}]}]}}});
    let docs = helm_template(&["--set-json", &format!("affinity={own}")]);
    assert_eq!(pod_spec(&docs)["affinity"], own);
}

#[test]
fn helm_metrics_on_localhost_or_behind_the_auth_proxy() {
    // Localhost: the controller binds 127.0.0.1, nothing in the cluster can scrape it.
    let docs = helm_template(&[
        "--set",
        "metrics.bindAddress=127.0.0.1,metrics.serviceMonitor.enabled=true",
    ]);
    assert!(controller_args(&docs).contains(&"--metrics-bind-address=127.0.0.1:8080".to_string()));
    assert!(!has(&docs, "Service"), "{:?}", kinds(&docs));
    assert!(!has(&docs, "ServiceMonitor"), "{:?}", kinds(&docs));
    assert!(
        pod_spec(&docs)["containers"][0]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["name"] != "metrics")
    );

    // The proxy: HTTPS on 8443 with TokenReview and SubjectAccessReview, the controller on localhost.
    let docs = helm_template(&[
        "--set",
        "metrics.authProxy.enabled=true,metrics.serviceMonitor.enabled=true",
    ]);
    assert!(controller_args(&docs).contains(&"--metrics-bind-address=127.0.0.1:8080".to_string()));
    let proxy = &pod_spec(&docs)["containers"][1];
    assert_eq!(proxy["name"], "metrics-auth-proxy");
    let proxy_args: Vec<&str> = proxy["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(
        proxy_args.contains(&"--upstream=http://127.0.0.1:8080/"),
        "{proxy_args:?}"
    );
    assert!(proxy_args.contains(&"--secure-listen-address=0.0.0.0:8443"));
    assert_eq!(
        proxy["ports"][0],
        json!({"name": "metrics", "containerPort": 8443, "protocol": "TCP"})
    );
    assert_eq!(
        proxy["securityContext"],
        pod_spec(&docs)["containers"][0]["securityContext"]
    );
    let svc = find(&docs, "Service", "cellnet-controller-metrics");
    assert_eq!(svc["spec"]["ports"][0]["port"], 8443);
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], "metrics");
    let sm = find(&docs, "ServiceMonitor", "cellnet-controller");
    assert_eq!(sm["spec"]["endpoints"][0]["scheme"], "https");
    let auth = find(&docs, "ClusterRole", "cellnet-metrics-auth");
    assert_eq!(
        auth["rules"],
        json!([
            {"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]},
            {"apiGroups": ["authorization.k8s.io"], "resources": ["subjectaccessreviews"], "verbs": ["create"]}
        ])
    );
    let reader = find(&docs, "ClusterRole", "cellnet-metrics-reader");
    assert_eq!(
        reader["rules"],
        json!([{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}])
    );
    // Off by default: the controller's own RBAC gains nothing.
    let docs = helm_template(&[]);
    assert!(
        !docs
            .iter()
            .any(|d| d["metadata"]["name"] == "cellnet-metrics-auth")
    );
    assert_eq!(pod_spec(&docs)["containers"].as_array().unwrap().len(), 1);
}

#[test]
fn helm_network_policy_allows_the_api_server_dns_and_the_allowlisted_apis_only() {
    let monitoring =
        json!([{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]);
    let extra = json!([{"to": [{"ipBlock": {"cidr": "203.0.113.5/32"}}], "ports": [{"port": 5000, "protocol": "TCP"}]}]);
    let docs = helm_template(&[
        "--set",
        "networkPolicy.enabled=true,networkPolicy.apiServer.cidrs={198.51.100.10/32}",
        "--set",
        "endpointAllow={198.51.100.0/24:50051,[2001:db8::/32]:8181,192.0.2.7,keystone.cells.example:5000}",
        "--set-json",
        &format!("networkPolicy.metricsFrom={monitoring}"),
        "--set-json",
        &format!("networkPolicy.extraEgress={extra}"),
    ]);
    let policy = find(&docs, "NetworkPolicy", "cellnet-controller");
    assert_eq!(policy["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
    assert_eq!(
        egress(policy),
        vec![
            (strings(&["198.51.100.10/32"]), strings(&["443/TCP", "6443/TCP"])),
            (strings(&["namespaces"]), strings(&["53/UDP", "53/TCP"])),
            (strings(&["198.51.100.0/24"]), strings(&["50051/TCP"])),
            (strings(&["2001:db8::/32"]), strings(&["8181/TCP"])),
            // No port in the rule: any port, as --endpoint-allow reads it.
            (strings(&["192.0.2.7/32"]), vec![]),
            // keystone.cells.example: a name, left to extraEgress.
            (strings(&["203.0.113.5/32"]), strings(&["5000/TCP"])),
        ]
    );
    assert_eq!(
        policy["spec"]["ingress"],
        json!([{"from": monitoring, "ports": [{"port": "metrics", "protocol": "TCP"}]}])
    );
    // Nobody named: no ingress at all.
    let docs = helm_template(&[
        "--set",
        "networkPolicy.enabled=true,networkPolicy.apiServer.cidrs={198.51.100.10/32},networkPolicy.dns=false",
        "--set",
        "endpointAllow={198.51.100.0/24:50051}",
    ]);
    let policy = find(&docs, "NetworkPolicy", "cellnet-controller");
    assert_eq!(policy["spec"]["ingress"], json!([]));
    assert_eq!(egress(policy).len(), 2, "{policy}");
}

/// Every hardened rendering on a real API server: server-side dry-run into a namespace that
/// enforces the restricted Pod Security Standard, which warns about a pod template breaking it.
#[test]
fn hardened_installs_pass_server_side_dry_run_and_restricted_pod_security() {
    let cp = support::control_plane();
    cp.install_crds();
    let ns = "cellnet-hardened";
    for name in [ns, "cellnet-system"] {
        let (ok, _, err) = run_with_input(
            kubectl().args(["apply", "-f", "-"]),
            &format!(
                "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n  labels:\n    pod-security.kubernetes.io/enforce: restricted\n"
            ),
        );
        assert!(ok, "{err}");
    }
    let dry_run = |what: &str, yaml: &str| {
        let (ok, out, err) = run_with_input(kubectl().args(["apply", "--dry-run=server", "-f", "-"]), yaml);
        assert!(ok, "{what}: {err}\n{out}");
        assert!(!err.contains("PodSecurity"), "{what} violates restricted: {err}");
        out
    };
    let out = dry_run(
        "kustomize with both components",
        &kustomize_with(&kubectl_path(), &["cluster-wide-secrets", "network-policy"]),
    );
    for object in [
        "networkpolicy.networking.k8s.io/cellnet-controller",
        "poddisruptionbudget.policy/cellnet-controller",
        "deployment.apps/cellnet-controller",
    ] {
        assert!(out.contains(object), "{object} missing: {out}");
    }
    let (ok, chart, err) = helm_run(&[
        "template",
        "hardened",
        "charts/cellnet",
        "--namespace",
        ns,
        "--set",
        "crds.enabled=false,replicas=3,podAntiAffinity=hard,metrics.authProxy.enabled=true",
        "--set",
        "networkPolicy.enabled=true,networkPolicy.apiServer.cidrs={198.51.100.10/32}",
        "--set",
        "endpointAllow={198.51.100.0/24:50051,[2001:db8::/32]:8181}",
        "--set-json",
        r#"networkPolicy.metricsFrom=[{"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"monitoring"}}}]"#,
    ]);
    assert!(ok, "{err}");
    let out = dry_run("the chart with every option", &chart);
    for object in [
        "networkpolicy.networking.k8s.io/cellnet-controller",
        "poddisruptionbudget.policy/cellnet-controller",
        "clusterrole.rbac.authorization.k8s.io/hardened-metrics-reader",
        "role.rbac.authorization.k8s.io/hardened-secrets",
    ] {
        assert!(out.contains(object), "{object} missing: {out}");
    }
    // Control: a sidecar without the security context does warn, so the check is live.
    let broken: String = yaml_docs(&chart)
        .into_iter()
        .filter(|d| d["kind"] == "Deployment")
        .map(|mut d| {
            d["spec"]["template"]["spec"]["containers"][1]
                .as_object_mut()
                .unwrap()
                .remove("securityContext");
            serde_json::to_string(&d).unwrap()
        })
        .collect();
    let (ok, _, err) = run_with_input(kubectl().args(["apply", "--dry-run=server", "-f", "-"]), &broken);
    assert!(ok, "{err}");
    assert!(err.contains("would violate PodSecurity"), "{err}");
}
