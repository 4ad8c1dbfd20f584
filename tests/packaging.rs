//! Packaging: the kustomize base, the Helm chart (lint, template, values schema, CRDs as templates),
//! their agreement on RBAC, the restricted Pod Security Standard (checked by a real API server's
//! PodSecurity admission), the Dockerfile, and the Argo CD health check on hand-written statuses
//! (tests/production.rs runs it on statuses the controller wrote).
mod ops;
mod support;

use std::process::Command;

use ops::{
    argocd_health, assert_cluster_wide_secrets, find, helm_run, helm_template, kinds, repo, run,
    run_with_input, yaml_docs,
};
use serde_json::{Value, json};

fn kustomize_build() -> Vec<Value> {
    let cp = support::control_plane();
    let (ok, out, err) = run(Command::new(cp.assets.join("kubectl"))
        .args(["kustomize"])
        .arg(repo().join("deploy")));
    assert!(ok, "kubectl kustomize deploy/: {err}");
    yaml_docs(&out)
}

fn container(docs: &[Value]) -> &Value {
    &find(docs, "Deployment", "cellnet-controller")["spec"]["template"]["spec"]["containers"][0]
}

fn args(docs: &[Value]) -> Vec<String> {
    container(docs)["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

/// The ClusterRole's and leader-election Role's rules, normalized for comparison.
fn rules(docs: &[Value]) -> Vec<Value> {
    let mut out: Vec<Value> = ["ClusterRole", "Role"]
        .iter()
        .flat_map(|k| docs.iter().filter(move |d| d["kind"] == *k))
        .flat_map(|d| d["rules"].as_array().unwrap().clone())
        .collect();
    out.sort_by_key(|r| r.to_string());
    out
}

/// What the restricted Pod Security Standard requires of a pod template.
fn assert_restricted(docs: &[Value]) {
    let spec = &find(docs, "Deployment", "cellnet-controller")["spec"]["template"]["spec"];
    let pod = &spec["securityContext"];
    assert_eq!(pod["runAsNonRoot"], true, "{pod}");
    assert_eq!(pod["seccompProfile"]["type"], "RuntimeDefault", "{pod}");
    let c = &container(docs)["securityContext"];
    assert_eq!(c["allowPrivilegeEscalation"], false, "{c}");
    assert_eq!(c["readOnlyRootFilesystem"], true, "{c}");
    assert_eq!(c["capabilities"]["drop"], json!(["ALL"]), "{c}");
    assert_eq!(c["seccompProfile"]["type"], "RuntimeDefault", "{c}");
}

/// Two replicas on different nodes when possible, and a budget that keeps one through drains.
fn assert_spread_and_budgeted(docs: &[Value]) {
    let spec = &find(docs, "Deployment", "cellnet-controller")["spec"]["template"]["spec"];
    let term = &spec["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"];
    assert_eq!(term["topologyKey"], "kubernetes.io/hostname", "{spec}");
    let pod_labels =
        &find(docs, "Deployment", "cellnet-controller")["spec"]["template"]["metadata"]["labels"];
    let pdb = find(docs, "PodDisruptionBudget", "cellnet-controller");
    assert_eq!(pdb["spec"]["minAvailable"], 1);
    for selector in [
        &term["labelSelector"]["matchLabels"],
        &pdb["spec"]["selector"]["matchLabels"],
    ] {
        for (k, v) in selector.as_object().unwrap() {
            assert_eq!(&pod_labels[k], v, "selects the controller's pods: {k}");
        }
    }
}

#[test]
fn kustomize_base_builds_with_everything_an_install_needs() {
    let docs = kustomize_build();
    for (kind, name) in [
        ("Namespace", "cellnet-system"),
        ("ServiceAccount", "cellnet-controller"),
        ("ClusterRole", "cellnet-controller"),
        ("ClusterRoleBinding", "cellnet-controller"),
        ("Role", "cellnet-leader-election"),
        ("RoleBinding", "cellnet-leader-election"),
        ("Role", "cellnet-secrets"),
        ("RoleBinding", "cellnet-secrets"),
        ("Deployment", "cellnet-controller"),
        ("PodDisruptionBudget", "cellnet-controller"),
        ("Service", "cellnet-controller-metrics"),
    ] {
        let d = find(&docs, kind, name);
        if kind != "Namespace" && !kind.starts_with("Cluster") {
            assert_eq!(d["metadata"]["namespace"], "cellnet-system", "{kind}/{name}");
        }
    }
    assert_eq!(docs.len(), 11, "{:?}", kinds(&docs));
    // Secrets per namespace by default: a Role in cellnet-system, none cluster-wide, the flag set.
    let cluster_role = find(&docs, "ClusterRole", "cellnet-controller");
    assert!(
        !cluster_role["rules"].to_string().contains("secrets"),
        "{}",
        cluster_role["rules"]
    );
    assert_eq!(
        find(&docs, "Role", "cellnet-secrets")["rules"][0]["verbs"],
        json!(["get", "list", "watch"])
    );
    let a = args(&docs);
    assert!(
        a.contains(&"--secret-namespaces=cellnet-system".to_string()),
        "{a:?}"
    );
    assert_spread_and_budgeted(&docs);
    assert!(a.contains(&"--leader-elect".to_string()), "{a:?}");
    assert!(a.contains(&"--metrics-bind-address=:8080".to_string()), "{a:?}");
    assert!(
        a.contains(&"--health-probe-bind-address=:8081".to_string()),
        "{a:?}"
    );
    let c = container(&docs);
    assert_eq!(c["image"], "ghcr.io/cellnet/cellnet-controller:v0.1.0");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_restricted(&docs);
    let ns = find(&docs, "Namespace", "cellnet-system");
    assert_eq!(
        ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "restricted"
    );
    // The Service selects the Deployment's pods.
    let selector = find(&docs, "Service", "cellnet-controller-metrics")["spec"]["selector"].clone();
    let labels = &find(&docs, "Deployment", "cellnet-controller")["spec"]["template"]["metadata"]["labels"];
    for (k, v) in selector.as_object().unwrap() {
        assert_eq!(&labels[k], v, "selector {k}");
    }
}

#[test]
fn helm_lint_is_clean() {
    let (ok, out, err) = helm_run(&["lint", "--strict", "charts/cellnet"]);
    assert!(ok, "helm lint --strict:\n{out}\n{err}");
    assert!(out.contains("0 chart(s) failed"), "{out}");
    // Every combination of the toggles lints too.
    for set in [
        "crds.enabled=false",
        "crds.keep=false",
        "metrics.serviceMonitor.enabled=true",
        "replicas=1,leaderElection.enabled=false",
        "rbac.clusterWideSecrets=true",
        "metrics.bindAddress=127.0.0.1",
        "metrics.authProxy.enabled=true,metrics.serviceMonitor.enabled=true",
        "podAntiAffinity=hard,podDisruptionBudget.minAvailable=2,replicas=3",
        "networkPolicy.enabled=true,networkPolicy.apiServer.cidrs={198.51.100.10/32},endpointAllow={198.51.100.0/24:50051}",
    ] {
        let (ok, out, err) = helm_run(&["lint", "--strict", "charts/cellnet", "--set", set]);
        assert!(ok, "helm lint --set {set}:\n{out}\n{err}");
    }
}

#[test]
fn helm_template_renders_the_same_install_as_kustomize() {
    let docs = helm_template(&[]);
    let base = kustomize_build();
    // Same RBAC, same flags, same security context: the two install paths do not drift apart.
    assert_eq!(rules(&docs), rules(&base));
    assert_eq!(args(&docs).iter().filter(|a| *a == "--leader-elect").count(), 1);
    for flag in [
        "--log-format=json",
        "--metrics-bind-address=:8080",
        "--health-probe-bind-address=:8081",
        "--sdn-resync-interval=10s",
        "--secret-namespaces=cellnet-system",
    ] {
        assert!(
            args(&docs).contains(&flag.to_string()),
            "{flag} missing in {:?}",
            args(&docs)
        );
    }
    assert_eq!(
        container(&docs)["securityContext"],
        container(&base)["securityContext"]
    );
    assert_restricted(&docs);
    assert_spread_and_budgeted(&docs);
    assert!(
        !docs.iter().any(|d| d["kind"] == "NetworkPolicy"),
        "NetworkPolicy is opt-in in both"
    );
    assert!(!base.iter().any(|d| d["kind"] == "NetworkPolicy"));
    assert_eq!(
        container(&docs)["image"],
        "ghcr.io/cellnet/cellnet-controller:0.1.0"
    );
    assert_eq!(
        find(&docs, "Deployment", "cellnet-controller")["spec"]["replicas"],
        2
    );
    assert!(
        !docs.iter().any(|d| d["kind"] == "ServiceMonitor"),
        "ServiceMonitor is off by default"
    );
}

#[test]
fn helm_values_change_what_they_say() {
    let docs = helm_template(&[
        "--set",
        "image.repository=registry.example/cellnet",
        "--set",
        "image.tag=v9",
        "--set",
        "replicas=3",
        "--set",
        "logLevel=debug",
        "--set",
        "logFormat=text",
        "--set",
        "resyncInterval=30s",
        "--set",
        "resources.limits.memory=512Mi",
        "--set",
        "metrics.serviceMonitor.enabled=true",
        "--set",
        "metrics.port=9090",
    ]);
    let c = container(&docs);
    assert_eq!(c["image"], "registry.example/cellnet:v9");
    assert_eq!(c["resources"]["limits"]["memory"], "512Mi");
    assert_eq!(c["env"][0], json!({"name": "RUST_LOG", "value": "debug"}));
    let a = args(&docs);
    for flag in [
        "--log-format=text",
        "--sdn-resync-interval=30s",
        "--metrics-bind-address=:9090",
    ] {
        assert!(a.contains(&flag.to_string()), "{flag} missing in {a:?}");
    }
    assert_eq!(
        find(&docs, "Deployment", "cellnet-controller")["spec"]["replicas"],
        3
    );
    let sm = find(&docs, "ServiceMonitor", "cellnet-controller");
    assert_eq!(sm["spec"]["endpoints"][0]["port"], "metrics");
    let svc = find(&docs, "Service", "cellnet-controller-metrics");
    for (k, v) in sm["spec"]["selector"]["matchLabels"].as_object().unwrap() {
        assert_eq!(
            &svc["metadata"]["labels"][k], v,
            "ServiceMonitor selects the Service: {k}"
        );
    }
    let digest = format!("sha256:{}", "a".repeat(64));
    let docs = helm_template(&["--set", &format!("image.digest={digest}")]);
    assert_eq!(
        container(&docs)["image"],
        format!("ghcr.io/cellnet/cellnet-controller@{digest}")
    );
}

#[test]
fn helm_crds_are_templates_with_the_keep_annotation() {
    let docs = helm_template(&[]);
    let crds: Vec<&Value> = docs
        .iter()
        .filter(|d| d["kind"] == "CustomResourceDefinition")
        .collect();
    assert_eq!(crds.len(), 2, "{:?}", kinds(&docs));
    for file in [
        "cellnet.io_cellinterconnects.yaml",
        "cellnet.io_infraendpoints.yaml",
    ] {
        let source = yaml_docs(&std::fs::read_to_string(repo().join("crds").join(file)).unwrap()).remove(0);
        let rendered = crds
            .iter()
            .find(|c| c["metadata"]["name"] == source["metadata"]["name"])
            .unwrap();
        // Same schema as crds/ (the chart links to it), plus the keep annotation and labels.
        assert_eq!(
            rendered["spec"], source["spec"],
            "{file}: chart CRD differs from crds/"
        );
        assert_eq!(
            rendered["metadata"]["annotations"]["helm.sh/resource-policy"],
            "keep"
        );
        assert_eq!(
            rendered["metadata"]["labels"]["app.kubernetes.io/name"],
            "cellnet"
        );
    }
    let docs = helm_template(&["--set", "crds.keep=false"]);
    let crd = docs
        .iter()
        .find(|d| d["kind"] == "CustomResourceDefinition")
        .unwrap();
    assert!(
        crd["metadata"]["annotations"]["helm.sh/resource-policy"].is_null(),
        "{}",
        crd["metadata"]
    );
    let docs = helm_template(&["--set", "crds.enabled=false"]);
    assert!(
        !docs.iter().any(|d| d["kind"] == "CustomResourceDefinition"),
        "{:?}",
        kinds(&docs)
    );
}

#[test]
fn helm_rejects_values_that_would_break_the_install() {
    for (set, expect) in [
        ("logFormat=xml", "logFormat"),
        ("resyncInterval=soon", "resyncInterval"),
        ("replicas=-1", "replicas"),
        ("metrics.port=70000", "port"),
        ("image.digest=latest", "digest"),
        ("unknownKey=1", "unknownKey"),
        // Two writers on one speaker: refused.
        (
            "replicas=2,leaderElection.enabled=false",
            "leaderElection.enabled=true",
        ),
        (
            "rbac.clusterWideSecrets=true,rbac.secretNamespaces={cells}",
            "leave rbac.secretNamespaces empty",
        ),
        ("networkPolicy.enabled=true", "networkPolicy.apiServer.cidrs"),
        (
            "networkPolicy.enabled=true,networkPolicy.apiServer.cidrs={198.51.100.10/32}",
            "reaches no SDN API",
        ),
        ("podAntiAffinity=maybe", "podAntiAffinity"),
        ("metrics.bindAddress=0.0.0.0", "bindAddress"),
    ] {
        let (ok, _, err) = helm_run(&["template", "cellnet", "charts/cellnet", "--set", set]);
        assert!(!ok, "--set {set} was accepted");
        assert!(err.contains(expect), "--set {set}: {err}");
    }
}

/// The real API server's PodSecurity admission warns when a workload's pod template would violate
/// the namespace's enforced level: applying both installs into a `restricted` namespace must not warn.
#[test]
fn both_installs_pass_the_restricted_pod_security_standard_on_a_real_api_server() {
    let cp = support::control_plane();
    cp.install_crds();
    let kubectl = || {
        let mut c = Command::new(cp.assets.join("kubectl"));
        c.env("KUBECONFIG", &cp.kubeconfig);
        c
    };
    let base = run(kubectl().args(["kustomize"]).arg(repo().join("deploy")));
    assert!(base.0, "{}", base.2);
    let (ok, out, err) = run_with_input(kubectl().args(["apply", "-f", "-"]), &base.1);
    assert!(ok, "apply the kustomize base: {err}\n{out}");
    assert!(
        !err.contains("PodSecurity"),
        "kustomize base violates restricted: {err}"
    );
    assert!(
        out.contains("deployment.apps/cellnet-controller created"),
        "{out}"
    );

    // The chart, into another namespace that enforces restricted.
    let ns = "cellnet-helm";
    let (ok, _, err) = run_with_input(
        kubectl().args(["apply", "-f", "-"]),
        &format!(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n  labels:\n    pod-security.kubernetes.io/enforce: restricted\n"
        ),
    );
    assert!(ok, "{err}");
    let (ok, chart, err) = helm_run(&[
        "template",
        "cellnet",
        "charts/cellnet",
        "--namespace",
        ns,
        // Cluster-scoped objects of the kustomize install exist already; the CRDs are applied.
        "--set",
        "crds.enabled=true",
    ]);
    assert!(ok, "{err}");
    let namespaced: Vec<String> = yaml_docs(&chart)
        .into_iter()
        .filter(|d| !["ClusterRole", "ClusterRoleBinding"].contains(&d["kind"].as_str().unwrap()))
        .map(|d| serde_json::to_string(&d).unwrap())
        .collect();
    let (ok, out, err) = run_with_input(
        kubectl().args(["apply", "--server-side", "--force-conflicts", "-f", "-"]),
        &namespaced.join("\n"),
    );
    assert!(ok, "apply the chart: {err}\n{out}");
    assert!(!err.contains("PodSecurity"), "chart violates restricted: {err}");

    // Control: a template without the security context does warn, so the check is live.
    let (ok, _, err) = run_with_input(
        kubectl().args(["apply", "-n", ns, "-f", "-"]),
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: insecure\nspec:\n  selector:\n    matchLabels: {app: x}\n  template:\n    metadata:\n      labels: {app: x}\n    spec:\n      containers:\n        - name: c\n          image: busybox\n",
    );
    assert!(ok, "{err}");
    assert!(
        err.contains("would violate PodSecurity \"restricted:latest\""),
        "{err}"
    );
}

#[test]
fn dockerfile_is_multi_stage_static_and_non_root() {
    let text = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    let froms: Vec<&str> = text.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(froms.len(), 2, "{froms:?}");
    assert!(froms[1].contains("distroless/static"), "{froms:?}");
    assert!(text.contains("-unknown-linux-musl"), "a static (musl) binary");
    assert!(text.contains("--locked"));
    let user = text
        .lines()
        .rev()
        .find(|l| l.starts_with("USER "))
        .expect("a USER line");
    assert!(user.contains("65532"), "numeric non-root user: {user}");
    // Everything COPY'd is let through .dockerignore.
    let ignore = std::fs::read_to_string(repo().join(".dockerignore")).unwrap();
    for path in ["Cargo.toml", "Cargo.lock", "build.rs", "proto/", "src/"] {
        assert!(ignore.contains(&format!("!{path}")), "{path} ignored");
        assert!(repo().join(path.trim_end_matches('/')).exists(), "{path}");
    }
    // Every [[bin]] and [[example]] path Cargo.toml names is in the build context.
    let manifest = std::fs::read_to_string(repo().join("Cargo.toml")).unwrap();
    for line in manifest.lines().filter(|l| l.starts_with("path = ")) {
        let path = line.trim_start_matches("path = ").trim_matches('"');
        assert!(
            ignore
                .lines()
                .any(|l| l.starts_with('!') && path.starts_with(l.trim_start_matches('!'))),
            "{path} (Cargo.toml) is not in the Docker build context (.dockerignore)"
        );
        assert!(
            text.lines().any(|l| l.starts_with("COPY ") && {
                let src = l.split_whitespace().nth(1).unwrap();
                path.starts_with(src.trim_end_matches('/'))
            }),
            "{path} is not copied by the Dockerfile"
        );
    }
}

fn object(kind: &str, generation: i64, spec: Value, status: Value) -> Value {
    json!({
        "apiVersion": "cellnet.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": "x", "namespace": "ns", "generation": generation},
        "spec": spec,
        "status": status,
    })
}

fn cond(type_: &str, status: &str, reason: &str, message: &str) -> Value {
    json!({"type": type_, "status": status, "reason": reason, "message": message,
           "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 1})
}

#[test]
fn argocd_health_check_covers_every_state() {
    let ready = cond(
        "Ready",
        "True",
        "SessionEstablished",
        "BGP session between cell cell1 and cell cell2 is Established",
    );
    let cases = [
        (
            object("CellInterconnect", 1, json!({}), Value::Null),
            "Progressing",
            "Waiting for cellnet-controller to report the CellInterconnect's status",
        ),
        (
            object(
                "CellInterconnect",
                2,
                json!({}),
                json!({"observedGeneration": 1, "conditions": [ready.clone()]}),
            ),
            "Progressing",
            "Waiting for cellnet-controller to observe generation 2",
        ),
        (
            object(
                "CellInterconnect",
                1,
                json!({}),
                json!({"observedGeneration": 1, "conditions": [ready.clone()]}),
            ),
            "Healthy",
            "BGP session between cell cell1 and cell cell2 is Established",
        ),
        (
            object(
                "CellInterconnect",
                1,
                json!({}),
                json!({"observedGeneration": 1, "conditions": [
                    cond("Ready", "False", "SessionNotEstablished", "BGP session not established: cell1 is Active"),
                    cond("Reconciling", "True", "SessionNotEstablished", "BGP session not established: cell1 is Active"),
                ]}),
            ),
            "Progressing",
            "BGP session not established: cell1 is Active",
        ),
        (
            object(
                "CellInterconnect",
                1,
                json!({}),
                json!({"observedGeneration": 1, "conditions": [
                    cond("Ready", "False", "EndpointNotFound", "InfraEndpoint ns/gone not found"),
                    cond("Stalled", "True", "EndpointNotFound", "InfraEndpoint ns/gone not found"),
                ]}),
            ),
            "Degraded",
            "InfraEndpoint ns/gone not found",
        ),
        (
            object(
                "CellInterconnect",
                1,
                json!({"suspend": true}),
                json!({"observedGeneration": 1, "conditions": [ready.clone()]}),
            ),
            "Suspended",
            "Reconciliation is suspended (spec.suspend)",
        ),
        (
            object(
                "CellInterconnect",
                1,
                json!({"adminState": "Disabled"}),
                json!({"observedGeneration": 1, "conditions": [
                    cond("Ready", "False", "AdministrativelyDown", "session between cell cell1 and cell cell2 is administratively down"),
                ]}),
            ),
            "Suspended",
            "session between cell cell1 and cell cell2 is administratively down",
        ),
        (
            object(
                "CellInterconnect",
                1,
                json!({}),
                json!({"observedGeneration": 1, "conditions": [
                    cond("Ready", "False", "SdnUnreachable", ""),
                ]}),
            ),
            "Degraded",
            "SdnUnreachable",
        ),
        (
            object(
                "InfraEndpoint",
                1,
                json!({"cell": "cell1"}),
                json!({"observedGeneration": 1, "conditions": [
                    cond("Ready", "True", "SpeakerConfigured", "speaker of cell cell1 configured"),
                ]}),
            ),
            "Healthy",
            "speaker of cell cell1 configured",
        ),
        (
            object(
                "InfraEndpoint",
                1,
                json!({"cell": "cell1"}),
                json!({"observedGeneration": 1, "conditions": [
                    cond("Ready", "False", "SpeakerConflict", "cell cell1: speaker runs with another global config"),
                    cond("Stalled", "True", "SpeakerConflict", "cell cell1: speaker runs with another global config"),
                ]}),
            ),
            "Degraded",
            "cell cell1: speaker runs with another global config",
        ),
        // Strings with quotes, backslashes and non-ASCII survive the trip into Lua.
        (
            object(
                "InfraEndpoint",
                1,
                json!({}),
                json!({"observedGeneration": 1, "conditions": [
                    cond("Ready", "True", "Ok", "quote \" backslash \\ naïve"),
                ]}),
            ),
            "Healthy",
            "quote \" backslash \\ naïve",
        ),
    ];
    for (obj, status, message) in cases {
        let got = argocd_health(&obj);
        assert_eq!(
            (got.0.as_str(), got.1.as_str()),
            (status, message),
            "for status {}",
            obj["status"]
        );
    }
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The fenced blocks of `lang` in Markdown `text`, in order.
fn fenced<'a>(text: &'a str, lang: &str) -> Vec<&'a str> {
    text.split(&format!("```{lang}\n"))
        .skip(1)
        .map(|b| b.split("\n```").next().unwrap())
        .collect()
}

/// The part of Markdown `doc` under `heading` (a line such as `## Flux`), up to the next heading
/// of the same level.
fn section<'a>(doc: &'a str, heading: &str) -> &'a str {
    let start = doc
        .find(&format!("\n{heading}\n"))
        .unwrap_or_else(|| panic!("no heading {heading:?}"))
        + 1;
    let level = heading.split(' ').next().unwrap();
    let body = start + heading.len();
    let end = doc[body..]
        .find(&format!("\n{level} "))
        .map_or(doc.len(), |i| body + i + 1);
    &doc[start..end]
}

/// docs/install.md and docs/gitops.md hold the install paths the README points to, and the Flux
/// Kustomization of docs/gitops.md is valid YAML with `wait: true`.
#[test]
fn docs_install_snippets_match_the_files() {
    let readme = read("README.md");
    for doc in ["docs/install.md", "docs/gitops.md"] {
        assert!(
            readme.contains(&format!("]({doc})")),
            "README does not link {doc}"
        );
    }
    let install = read("docs/install.md");
    for heading in ["## Helm", "## kustomize", "## What the controller may do (RBAC)"] {
        assert!(
            section(&install, heading).len() > heading.len() + 100,
            "docs/install.md: {heading} is empty"
        );
    }
    let gitops = read("docs/gitops.md");
    assert!(section(&gitops, "## Argo CD").contains("deploy/argocd/health.lua"));
    let flux: Vec<Value> = fenced(section(&gitops, "## Flux"), "yaml")
        .into_iter()
        .map(|b| yaml_docs(b).remove(0))
        .collect();
    let flux = flux
        .iter()
        .find(|b| b["kind"] == "Kustomization")
        .expect("Flux snippet");
    assert_eq!(flux["apiVersion"], "kustomize.toolkit.fluxcd.io/v1");
    assert_eq!(flux["spec"]["wait"], true);
}

/// The README's documentation index names every file of docs/, each as a working link.
#[test]
fn readme_indexes_every_doc() {
    let readme = read("README.md");
    let index = section(&readme, "## Documentation");
    let mut docs: Vec<String> = std::fs::read_dir(repo().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|f| f.ends_with(".md"))
        .collect();
    docs.sort();
    assert!(docs.len() >= 10, "{docs:?}");
    for doc in docs {
        assert!(
            index.contains(&format!("](docs/{doc})")),
            "README's documentation index lacks docs/{doc}"
        );
    }
}

/// The keys of `argocd-cm` that hold the health check, one per kind.
const HEALTH_KEYS: [&str; 2] = [
    "resource.customizations.health.cellnet.io_CellInterconnect",
    "resource.customizations.health.cellnet.io_InfraEndpoint",
];

/// `argocd-cm` as an Argo CD install leaves it: a label and a key of its own.
const ARGOCD_CM: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: argocd-cm\n  labels:\n    app.kubernetes.io/part-of: argocd\ndata:\n  url: https://argocd.example.com\n";

/// `cm` holds exactly `lua` under both health keys, and what it held before.
fn assert_health_wired(cm: &Value, lua: &str, how: &str) {
    for key in HEALTH_KEYS {
        assert_eq!(
            cm["data"][key].as_str(),
            Some(lua),
            "{how}: {key} is not health.lua"
        );
    }
    assert_eq!(cm["data"]["url"], "https://argocd.example.com", "{how}: {cm}");
    assert_eq!(cm["data"].as_object().unwrap().len(), 3, "{how}: {cm}");
    assert_eq!(
        cm["metadata"]["labels"]["app.kubernetes.io/part-of"], "argocd",
        "{how}"
    );
    assert_eq!(cm["metadata"]["name"], "argocd-cm", "{how}");
    assert_eq!(cm["metadata"]["namespace"], "argocd", "{how}");
}

/// docs/gitops.md wires deploy/argocd/health.lua into `argocd-cm` without a copy of it: no doc
/// holds the script's lines, the shape it shows names the file under both keys, and its command
/// (run on a real API server) and its kustomization (built) leave exactly the file's content under
/// both keys and the rest of `argocd-cm` as it was.
#[test]
fn docs_wire_the_argocd_health_check_from_the_file_without_a_copy() {
    let lua = read("deploy/argocd/health.lua");
    let argo = section(&read("docs/gitops.md"), "## Argo CD").to_string();
    assert!(argo.contains("`deploy/argocd/health.lua`"), "{argo}");

    // No stale copy: not one distinctive line of the script in the README or any doc.
    let lines: Vec<&str> = lua.lines().map(str::trim).filter(|l| l.len() >= 20).collect();
    assert!(lines.len() >= 20, "too few lines to recognise a copy: {lines:?}");
    let docs = std::fs::read_dir(repo().join("docs"))
        .unwrap()
        .map(|e| format!("docs/{}", e.unwrap().file_name().to_string_lossy()))
        .filter(|p| p.ends_with(".md"));
    for path in std::iter::once("README.md".to_string()).chain(docs) {
        let text = read(&path);
        let copied: Vec<&&str> = lines.iter().filter(|l| text.contains(**l)).collect();
        assert!(
            copied.is_empty(),
            "{path} carries a copy of health.lua: {copied:?}"
        );
    }

    let yaml: Vec<Value> = fenced(&argo, "yaml")
        .into_iter()
        .map(|b| yaml_docs(b).remove(0))
        .collect();
    // The shape: both keys, each standing for the file.
    let shape = yaml
        .iter()
        .find(|b| b.get("kind").is_none())
        .expect("the argocd-cm shape");
    let keys: Vec<&String> = shape["data"].as_object().expect("data").keys().collect();
    assert_eq!(keys, HEALTH_KEYS, "{shape}");
    for key in HEALTH_KEYS {
        assert!(
            shape["data"][key]
                .as_str()
                .unwrap()
                .contains("deploy/argocd/health.lua")
        );
    }

    // The command, on a real API server, over an argocd-cm that has other content; twice, since
    // the docs say to run it again after an upgrade.
    let cp = support::control_plane();
    let (ok, _, err) = cp.kubectl_run(&["create", "namespace", "argocd"]);
    assert!(ok || err.contains("AlreadyExists"), "{err}");
    let (ok, _, err) = run_with_input(cp.kubectl().args(["apply", "-n", "argocd", "-f", "-"]), ARGOCD_CM);
    assert!(ok, "{err}");
    let commands: Vec<&str> = fenced(&argo, "sh")
        .into_iter()
        .filter(|b| b.contains("argocd-cm"))
        .collect();
    assert_eq!(commands.len(), 1, "one command for argocd-cm: {commands:?}");
    let path = format!(
        "{}:{}",
        cp.assets.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for round in 1..=2 {
        let (ok, out, err) = run(Command::new("bash")
            .args(["-euo", "pipefail", "-c", commands[0]])
            .current_dir(repo())
            .env("PATH", &path)
            .env("KUBECONFIG", &cp.kubeconfig));
        assert!(ok, "the command of docs/gitops.md, run {round}: {err}\n{out}");
    }
    let (ok, out, err) = cp.kubectl_run(&["get", "configmap", "argocd-cm", "-n", "argocd", "-o", "json"]);
    assert!(ok, "{err}");
    assert_health_wired(&serde_json::from_str(&out).unwrap(), &lua, "the command");

    // The kustomization, with a local stand-in for Argo CD's install.yaml and health.lua copied
    // next to it as the docs say.
    let mut kustomization = yaml
        .iter()
        .find(|b| b["kind"] == "Kustomization")
        .expect("the kustomization")
        .clone();
    assert_eq!(kustomization["apiVersion"], "kustomize.config.k8s.io/v1beta1");
    let dir = tempfile::tempdir().unwrap();
    let generator = &kustomization["configMapGenerator"][0];
    assert_eq!(generator["name"], "argocd-cm");
    assert_eq!(generator["behavior"], "merge");
    for entry in generator["files"].as_array().expect("files") {
        let (key, file) = entry.as_str().unwrap().split_once('=').expect("key=file");
        assert!(HEALTH_KEYS.contains(&key), "{key}");
        std::fs::write(dir.path().join(file), &lua).unwrap();
    }
    std::fs::write(dir.path().join("argocd-install.yaml"), ARGOCD_CM).unwrap();
    kustomization["resources"] = json!(["argocd-install.yaml"]);
    std::fs::write(dir.path().join("kustomization.yaml"), kustomization.to_string()).unwrap();
    let (ok, out, err) = run(cp.kubectl().arg("kustomize").arg(dir.path()));
    assert!(ok, "kubectl kustomize of the docs' kustomization: {err}");
    assert_health_wired(
        find(&yaml_docs(&out), "ConfigMap", "argocd-cm"),
        &lua,
        "the kustomization",
    );
}

/// `endpointAllow` and `allowUnlabelledSecrets` become the controller's flags; by default neither
/// is set (any URL, labelled Secrets only), as in the kustomize base.
#[test]
fn helm_passes_the_allowlist_and_the_secret_waiver() {
    let trust = |a: &[String]| -> Vec<String> {
        a.iter()
            .filter(|a| a.starts_with("--endpoint-allow") || a.starts_with("--allow-unlabelled"))
            .cloned()
            .collect()
    };
    assert_eq!(trust(&args(&helm_template(&[]))), Vec::<String>::new());
    assert_eq!(trust(&args(&kustomize_build())), Vec::<String>::new());
    let docs = helm_template(&[
        "--set",
        "endpointAllow={198.51.100.0/24:50051,[2001:db8::/32]:8181,*.cells.example}",
        "--set",
        "allowUnlabelledSecrets=true",
    ]);
    assert_eq!(
        trust(&args(&docs)),
        [
            "--endpoint-allow=198.51.100.0/24:50051,[2001:db8::/32]:8181,*.cells.example",
            "--allow-unlabelled-secrets"
        ]
    );
    let (ok, out, err) = helm_run(&[
        "lint",
        "--strict",
        "charts/cellnet",
        "--set",
        "endpointAllow={10.0.0.0/8},allowUnlabelledSecrets=true",
    ]);
    assert!(ok, "helm lint:\n{out}\n{err}");
}

/// `requireTls` becomes `--require-tls` (off by default, as in the kustomize base, where the
/// flag is a commented line); the refused-credentials backoff and the liveness limit are passed.
#[test]
fn helm_passes_require_tls_and_the_backoffs() {
    let picked = |a: &[String]| -> Vec<String> {
        a.iter()
            .filter(|a| {
                [
                    "--require-tls",
                    "--auth-failure-backoff",
                    "--liveness-stall-after",
                ]
                .iter()
                .any(|f| a.starts_with(f))
            })
            .cloned()
            .collect()
    };
    assert_eq!(
        picked(&args(&helm_template(&[]))),
        ["--auth-failure-backoff=2m", "--liveness-stall-after=5m"]
    );
    assert_eq!(picked(&args(&kustomize_build())), Vec::<String>::new());
    let kustomize_base = std::fs::read_to_string("deploy/deployment.yaml").unwrap();
    assert!(
        kustomize_base.contains("# - --require-tls"),
        "the kustomize base documents the flag"
    );
    let docs = helm_template(&["--set", "requireTls=true,authFailureBackoff=10m"]);
    assert_eq!(
        picked(&args(&docs)),
        [
            "--auth-failure-backoff=10m",
            "--liveness-stall-after=5m",
            "--require-tls"
        ]
    );
    let (ok, out, err) = helm_run(&["lint", "--strict", "charts/cellnet", "--set", "requireTls=true"]);
    assert!(ok, "helm lint:\n{out}\n{err}");
}

/// `rbac.secretNamespaces`: no cluster-wide Secret rule, one Role per namespace, the flag set; the
/// release namespace by default; `rbac.clusterWideSecrets` the opt-in for every namespace.
#[test]
fn helm_narrows_secret_access_to_namespaces() {
    let docs = helm_template(&["--set", "rbac.secretNamespaces={cells-a,cells-b}"]);
    let cluster_role = find(&docs, "ClusterRole", "cellnet-controller");
    assert!(
        !cluster_role["rules"].to_string().contains("secrets"),
        "{}",
        cluster_role["rules"]
    );
    for ns in ["cells-a", "cells-b"] {
        let role = docs
            .iter()
            .find(|d| {
                d["kind"] == "Role"
                    && d["metadata"]["name"] == "cellnet-secrets"
                    && d["metadata"]["namespace"] == ns
            })
            .unwrap_or_else(|| panic!("no Role cellnet-secrets in {ns}: {:?}", kinds(&docs)));
        assert_eq!(role["rules"][0]["verbs"], json!(["get", "list", "watch"]));
        let binding = docs
            .iter()
            .find(|d| d["kind"] == "RoleBinding" && d["metadata"]["namespace"] == ns)
            .unwrap();
        assert_eq!(binding["subjects"][0]["namespace"], "cellnet-system");
    }
    assert!(
        args(&docs).contains(&"--secret-namespaces=cells-a,cells-b".to_string()),
        "{:?}",
        args(&docs)
    );
    // Default: the release namespace only.
    let docs = helm_template(&[]);
    assert!(
        args(&docs).contains(&"--secret-namespaces=cellnet-system".to_string()),
        "{:?}",
        args(&docs)
    );
    let role = find(&docs, "Role", "cellnet-secrets");
    assert_eq!(role["metadata"]["namespace"], "cellnet-system");
    // Opt-in: cluster-wide, no Role, no flag.
    let docs = helm_template(&["--set", "rbac.clusterWideSecrets=true"]);
    assert!(!args(&docs).iter().any(|a| a.starts_with("--secret-namespaces")));
    assert!(
        !docs.iter().any(|d| d["metadata"]["name"] == "cellnet-secrets"),
        "{:?}",
        kinds(&docs)
    );
    assert_cluster_wide_secrets(&docs);
}

/// The chart's PrometheusRule holds exactly the groups of deploy/monitoring/cellnet-alerts.yaml,
/// and is rendered only when the cluster has the CRD (and the toggle is on).
#[test]
fn helm_prometheus_rule_is_the_rules_file_when_the_crd_exists() {
    let rules: Value = serde_yaml::from_str(&read("deploy/monitoring/cellnet-alerts.yaml")).unwrap();
    let has_crd = ["--api-versions", "monitoring.coreos.com/v1/PrometheusRule"];
    let docs = helm_template(&has_crd);
    let rule = find(&docs, "PrometheusRule", "cellnet-controller");
    assert_eq!(rule["spec"]["groups"], rules["groups"]);
    assert_eq!(rule["metadata"]["namespace"], "cellnet-system");
    assert!(
        !kinds(&helm_template(&[]))
            .iter()
            .any(|k| k.starts_with("PrometheusRule/")),
        "no CRD: none"
    );
    let off = [&has_crd[..], &["--set", "metrics.prometheusRule.enabled=false"]].concat();
    assert!(
        !kinds(&helm_template(&off))
            .iter()
            .any(|k| k.starts_with("PrometheusRule/")),
        "disabled: none"
    );
    let labelled = [
        &has_crd[..],
        &["--set", "metrics.prometheusRule.labels.release=kps"],
    ]
    .concat();
    let docs = helm_template(&labelled);
    assert_eq!(
        find(&docs, "PrometheusRule", "cellnet-controller")["metadata"]["labels"]["release"],
        "kps"
    );
}

/// The chart's dashboard ConfigMap holds exactly deploy/monitoring/cellnet-dashboard.json, with
/// the label Grafana's sidecar watches.
#[test]
fn helm_grafana_dashboard_is_the_json_file() {
    let docs = helm_template(&[]);
    let cm = find(&docs, "ConfigMap", "cellnet-dashboard");
    assert_eq!(cm["metadata"]["labels"]["grafana_dashboard"], "1");
    let shipped: Value = serde_json::from_str(cm["data"]["cellnet.json"].as_str().unwrap()).unwrap();
    let file: Value = serde_json::from_str(&read("deploy/monitoring/cellnet-dashboard.json")).unwrap();
    assert_eq!(shipped, file);
    let elsewhere = helm_template(&["--set", "metrics.grafanaDashboard.namespace=monitoring"]);
    assert_eq!(
        find(&elsewhere, "ConfigMap", "cellnet-dashboard")["metadata"]["namespace"],
        "monitoring"
    );
    let off = helm_template(&["--set", "metrics.grafanaDashboard.enabled=false"]);
    assert!(!kinds(&off).iter().any(|k| k == "ConfigMap/cellnet-dashboard"));
}

/// plugins/cellnet.yaml, rendered as krew-release-bot would for a tag (each `addURIAndSha` an
/// archive URL and a sha256), is a krew Plugin manifest for both Linux architectures.
#[test]
fn krew_manifest_renders_to_a_plugin_for_both_architectures() {
    let tag = "v0.1.0";
    let sha = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let rendered: String = read("plugins/cellnet.yaml")
        .lines()
        .map(|line| match line.trim_start().strip_prefix("{{addURIAndSha \"") {
            Some(rest) => {
                let indent = &line[..line.len() - line.trim_start().len()];
                let url = rest.split('"').next().unwrap().replace("{{ .TagName }}", tag);
                format!("{indent}uri: {url}\n{indent}sha256: {sha}")
            }
            None => line.replace("{{ .TagName }}", tag),
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert!(!rendered.contains("{{"), "{rendered}");
    let doc: Value = serde_yaml::from_str(&rendered).unwrap();
    assert_eq!(doc["apiVersion"], "krew.googlecontainertools.github.com/v1alpha2");
    assert_eq!(
        (doc["kind"].as_str(), doc["metadata"]["name"].as_str()),
        (Some("Plugin"), Some("cellnet"))
    );
    assert_eq!(doc["spec"]["version"], tag);
    assert!(doc["spec"]["shortDescription"].as_str().unwrap().len() <= 60);
    let platforms = doc["spec"]["platforms"].as_array().unwrap();
    let arches: Vec<&str> = platforms
        .iter()
        .map(|p| p["selector"]["matchLabels"]["arch"].as_str().unwrap())
        .collect();
    assert_eq!(arches, ["amd64", "arm64"]);
    for p in platforms {
        let arch = p["selector"]["matchLabels"]["arch"].as_str().unwrap();
        assert_eq!(p["selector"]["matchLabels"]["os"], "linux");
        assert_eq!(p["bin"], "kubectl-cellnet");
        assert_eq!(p["sha256"], sha);
        assert!(
            p["uri"]
                .as_str()
                .unwrap()
                .ends_with(&format!("/{tag}/kubectl-cellnet-{tag}-linux-{arch}.tar.gz"))
        );
    }
}
