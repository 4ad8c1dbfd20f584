//! End to end: `kubectl-cellnet` against a real control plane, the real controller and real
//! gobgpd cells (127.0.4.x, BGP port 1790). Asserts what each command prints and its exit status,
//! on healthy links and on broken ones (Secret missing, peer removed by hand, speaker killed).
//!
//! One test, `plugin_end_to_end`, owns the control plane of this binary and walks the scenario in
//! order (the first step needs the CRDs absent); `help_and_usage` needs no cluster.
mod support;

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use cellnet::api::{CellInterconnect, InfraEndpoint, Reason, SideStatus};
use kube::ResourceExt as _;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};
use support::gobgp::{ESTABLISHED, Gobgpd};
use support::manifests::{self, BGP_PORT, interconnect};
use support::{
    ControlPlane, ControllerProcess, InterconnectStatusExt as _, Kind as _, report, wait_condition, wait_for,
    wait_ready,
};

const NS: &str = "plugin";
/// Bounded waits: a fresh session takes 6-9 s.
const WAIT: Duration = Duration::from_secs(45);
/// GoBGP's session state IDLE.
const IDLE: i64 = 1;

fn addr(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 4, last)
}

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(addr(last))
}

fn plugin_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kubectl-cellnet"))
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl std::fmt::Debug for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

fn run(mut cmd: Command) -> Out {
    let out = cmd.output().expect("run kubectl-cellnet");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `kubectl-cellnet ARGS` with `kubeconfig` (stdout is a pipe: no colour).
fn plugin_as(kubeconfig: &Path, args: &[&str]) -> Out {
    let mut cmd = Command::new(plugin_binary());
    cmd.args(args)
        .env("KUBECONFIG", kubeconfig)
        .env_remove("NO_COLOR");
    let out = run(cmd);
    assert!(!out.stdout.contains('\x1b'), "colour on a pipe: {out:?}");
    out
}

fn plugin(cp: &ControlPlane, args: &[&str]) -> Out {
    let out = plugin_as(&cp.kubeconfig, args);
    transcript(&format!("kubectl cellnet {}", args.join(" ")), &out);
    report(&format!("kubectl cellnet {}: exit {}", args.join(" "), out.code));
    out
}

/// With `CELLNET_PLUGIN_TRANSCRIPT=<file>`, every command and its output is appended there (a
/// transcript of the whole scenario, for reading what the plugin prints).
fn transcript(command: &str, out: &Out) {
    let Some(path) = std::env::var_os("CELLNET_PLUGIN_TRANSCRIPT") else {
        return;
    };
    use std::io::Write as _;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("transcript file");
    let _ = writeln!(
        file,
        "$ {command}\n{}{}(exit {})\n",
        out.stdout, out.stderr, out.code
    );
}

/// `kubectl cellnet ARGS` through kubectl itself, with the plugin's directory on PATH.
fn via_kubectl(cp: &ControlPlane, args: &[&str]) -> Out {
    let dir = plugin_binary().parent().unwrap().to_path_buf();
    let path = format!("{}:{}", dir.display(), std::env::var("PATH").unwrap_or_default());
    let mut cmd = cp.kubectl();
    cmd.arg("cellnet").args(args).env("PATH", path);
    run(cmd)
}

fn managed_endpoint(name: &str, cell: &str, last: u8, speaker: &Gobgpd) -> String {
    manifests::endpoint(name)
        .cell(cell)
        .address(addr(last))
        .asn(65400 + u32::from(last))
        .port(BGP_PORT)
        .gobgp(&speaker.api_url())
        .yaml()
}

/// The interconnects' password Secret `bgp-pw`, the password under `key`.
fn secret(key: &str) -> String {
    manifests::secret("bgp-pw", &[(key, "s3cret-pw")])
}

/// Read-only on cellnet objects and events, nothing on Secrets, for the user `viewer`.
const VIEWER_RBAC: &str = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: cellnet-viewer
rules:
- apiGroups: [cellnet.io]
  resources: [cellinterconnects, infraendpoints]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [events]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: cellnet-viewer
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: cellnet-viewer
subjects:
- apiGroup: rbac.authorization.k8s.io
  kind: User
  name: viewer
"#;

/// The interconnect as stored, raw: the spec checks below also compare values that are the
/// defaults, which a typed read would fill in when missing.
/// Every `-o json|yaml` document carries the version of its shape and its kind.
fn assert_versioned(doc: &Value, kind: &str) {
    assert_eq!(doc["apiVersion"], cellnet::plugin::DOCUMENT_API_VERSION, "{doc}");
    assert_eq!(doc["apiVersion"], "cellnet.io/plugin-v1", "{doc}");
    assert_eq!(doc["kind"], kind, "{doc}");
}

fn cic(cp: &ControlPlane, name: &str) -> Value {
    cp.get_json(NS, &format!("cic/{name}"))
        .unwrap_or_else(|| panic!("cic/{name} missing"))
}

/// The table row whose first column is `key`.
fn row<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find(|l| l.split_whitespace().next() == Some(key))
        .unwrap_or_else(|| panic!("no row {key:?} in:\n{text}"))
}

fn line_with<'a>(text: &'a str, needle: &str) -> &'a str {
    text.lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{text}"))
}

/// The plugin's `--help` output, exit codes of usage errors; no cluster needed.
#[test]
fn help_and_usage() {
    let help = run({
        let mut c = Command::new(plugin_binary());
        c.arg("--help");
        c
    });
    assert_eq!(help.code, 0, "{help:?}");
    for word in [
        "cells",
        "status",
        "routes",
        "diagnose",
        "resync",
        "suspend",
        "resume",
        "disable",
        "enable",
        "Exit status",
        "Examples",
    ] {
        assert!(help.stdout.contains(word), "--help lacks {word}: {help:?}");
    }
    for cmd in [
        "cells",
        "status",
        "routes",
        "diagnose",
        "resync",
        "suspend",
        "resume",
        "disable",
        "enable",
        "completion",
    ] {
        let out = run({
            let mut c = Command::new(plugin_binary());
            c.args([cmd, "--help"]);
            c
        });
        assert_eq!(out.code, 0, "{cmd} --help: {out:?}");
        assert!(
            out.stdout.contains("Examples:"),
            "{cmd} --help has no examples: {out:?}"
        );
        assert!(out.stdout.contains("kubectl cellnet"), "{cmd} --help: {out:?}");
    }
    // Completion scripts for the three shells, without a cluster; bash's is valid bash.
    for shell in ["bash", "zsh", "fish"] {
        let out = run({
            let mut c = Command::new(plugin_binary());
            c.args(["completion", shell]).env("KUBECONFIG", "/nonexistent");
            c
        });
        assert_eq!(out.code, 0, "completion {shell}: {out:?}");
        assert!(
            out.stdout.contains("kubectl-cellnet") && out.stdout.contains("diagnose"),
            "{out:?}"
        );
    }
    let script = run({
        let mut c = Command::new(plugin_binary());
        c.args(["completion", "bash"]);
        c
    })
    .stdout;
    let checked = run({
        let mut c = Command::new("bash");
        c.args(["-n", "-c", &script]);
        c
    });
    assert_eq!(checked.code, 0, "bash -n: {checked:?}");
    // No target, two targets, --all where it is not offered: usage errors, exit 2.
    for args in [
        &["suspend"][..],
        &["disable", "x", "--cell", "c"],
        &["enable", "--all"],
    ] {
        let out = run({
            let mut c = Command::new(plugin_binary());
            c.args(args);
            c
        });
        assert_eq!(out.code, 2, "{args:?}: {out:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn plugin_end_to_end() {
    let began = Instant::now();
    let cp = support::control_plane();

    // --- CRDs not installed: a clear error, exit 1.
    let out = plugin(cp, &["cells", "-n", NS]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("CRDs are not installed"), "{out:?}");

    cp.install_crds();
    support::namespace(cp, NS).await;
    let mut controller = ControllerProcess::start(cp, &["--sdn-resync-interval", "2s"]);

    // --- Three cells: cell1 peers with cell2 (with a password) and with cell3.
    let a = Gobgpd::start("plugin-cell1", addr(1), None);
    let mut b = Gobgpd::start("plugin-cell2", addr(2), None);
    let c = Gobgpd::start("plugin-cell3", addr(3), None);
    cp.apply(
        NS,
        &[
            secret("password"),
            managed_endpoint("cell1-gobgp", "cell1", 1, &a),
            managed_endpoint("cell2-gobgp", "cell2", 2, &b),
            managed_endpoint("cell3-gobgp", "cell3", 3, &c),
            interconnect("cell1-cell2", "cell1-gobgp", "cell2-gobgp")
                .password("bgp-pw", "password")
                .yaml(),
            interconnect("cell1-cell3", "cell1-gobgp", "cell3-gobgp").yaml(),
        ]
        .join("---\n"),
    );
    wait_ready::<CellInterconnect>(cp, NS, "cell1-cell2", WAIT);
    wait_ready::<CellInterconnect>(cp, NS, "cell1-cell3", WAIT);

    // --- Healthy: cells, status, diagnose (also through kubectl), resync.
    let out = plugin(cp, &["cells", "-n", NS]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.starts_with("CELL"), "{out:?}");
    let cell1 = row(&out.stdout, "cell1");
    assert!(cell1.contains("cell1-gobgp") && cell1.contains("2/2"), "{out:?}");
    assert!(
        cell1.trim_end().ends_with('-'),
        "no session down in cell1: {out:?}"
    );
    assert!(row(&out.stdout, "cell3").contains("1/1"), "{out:?}");

    let out = plugin(cp, &["status", "-n", NS]);
    assert_eq!(out.code, 0, "{out:?}");
    for cell in ["CELL cell1", "CELL cell2", "CELL cell3"] {
        assert!(out.stdout.contains(cell), "{out:?}");
    }
    assert!(
        line_with(&out.stdout, "cell1-cell2").contains("True SessionEstablished"),
        "{out:?}"
    );
    assert_eq!(
        out.stdout.matches("   Established   ").count(),
        8,
        "2 sides x 2 links, each under 2 cells: {out:?}"
    );

    let out = plugin(cp, &["status", "-n", NS, "--cell", "cell3", "-o", "wide"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("cell1-cell3") && !out.stdout.contains("cell1-cell2"),
        "{out:?}"
    );
    assert!(
        out.stdout.contains("127.0.4.3") && out.stdout.contains("GoBGP"),
        "{out:?}"
    );

    let out = plugin(cp, &["status", "-n", NS, "-o", "json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let doc: Value = serde_json::from_str(&out.stdout).expect("status -o json");
    let cells = doc["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 3, "{doc}");
    assert_eq!(cells[0]["cell"], "cell1");
    assert_eq!(
        cells[0]["interconnects"][0]["local"]["sessionState"],
        "Established"
    );
    assert_eq!(cells[0]["interconnects"][0]["remote"]["flaps"], 0);
    assert_versioned(&doc, "Status");
    let out = plugin(cp, &["status", "-n", NS, "-o", "yaml", "--cell", "cell2"]);
    let doc: Value = serde_yaml::from_str(&out.stdout).expect("status -o yaml");
    assert_eq!(doc["cells"][0]["interconnects"][0]["name"], "cell1-cell2");
    assert_versioned(&doc, "Status");

    let out = plugin(cp, &["cells", "-n", NS, "-o", "json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let doc: Value = serde_json::from_str(&out.stdout).expect("cells -o json");
    assert_versioned(&doc, "Cells");
    assert_eq!(
        doc["cells"][0],
        json!({"cell": "cell1", "endpoints": ["cell1-gobgp"], "interconnects": ["cell1-cell2", "cell1-cell3"],
               "ready": ["cell1-cell2", "cell1-cell3"], "notEstablished": []}),
        "{doc}"
    );
    let out = plugin(cp, &["cells", "-n", NS, "-o", "yaml"]);
    let doc: Value = serde_yaml::from_str(&out.stdout).expect("cells -o yaml");
    assert_eq!(doc["cells"].as_array().map(Vec::len), Some(3), "{doc}");

    let out = plugin(cp, &["diagnose", "cell1-cell2", "-n", NS, "-o", "json"]);
    assert_eq!(out.code, 0, "healthy, as without -o: {out:?}");
    let doc: Value = serde_json::from_str(&out.stdout).expect("diagnose -o json");
    assert_versioned(&doc, "Diagnosis");
    assert_eq!(
        doc["interconnect"],
        json!({"namespace": NS, "name": "cell1-cell2"})
    );
    assert_eq!(
        (doc["healthy"].clone(), doc["breaksAt"].clone()),
        (json!(true), Value::Null)
    );
    let steps = doc["steps"].as_array().unwrap();
    assert!(
        steps.len() >= 10 && steps.iter().all(|s| s["verdict"] == "OK"),
        "{doc}"
    );

    let out = plugin(cp, &["diagnose", "cell1-cell2", "-n", NS, "--probe"]);
    assert_eq!(out.code, 0, "healthy link: {out:?}");
    assert!(out.stdout.contains("HEALTHY"), "{out:?}");
    assert!(
        !out.stdout.contains("FAILED") && !out.stdout.contains("UNKNOWN"),
        "{out:?}"
    );
    assert!(out.stdout.contains("Secret plugin/bgp-pw present"), "{out:?}");
    assert!(
        out.stdout.contains("TCP connect to 127.0.4.2:1790 succeeded in"),
        "{out:?}"
    );
    assert!(!out.stdout.contains("s3cret-pw"), "no secrets in the output");

    let out = via_kubectl(cp, &["diagnose", "cell1-cell3", "-n", NS]);
    assert_eq!(out.code, 0, "kubectl cellnet diagnose: {out:?}");
    assert!(out.stdout.contains("HEALTHY"), "{out:?}");

    let out = plugin(cp, &["resync", "cell1-cell2", "-n", NS]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout
            .contains("cellinterconnect plugin/cell1-cell2 resynced"),
        "{out:?}"
    );
    assert!(out.stdout.contains("Ready=True"), "{out:?}");
    assert!(out.stderr.contains("1/1 handled"), "progress on stderr: {out:?}");
    let requested = |name| {
        let obj = cp.get::<CellInterconnect>(NS, name).expect("interconnect");
        obj.annotations()
            .get("cellnet.io/reconcile-requested-at")
            .cloned()
    };
    let first = requested("cell1-cell2").expect("annotation set");
    assert_eq!(requested("cell1-cell3"), None);
    // --cell acts on exactly that cell's interconnects.
    let out = plugin(cp, &["resync", "--cell", "cell3", "-n", NS, "--wait=false"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(requested("cell1-cell3").is_some());
    assert_eq!(
        requested("cell1-cell2"),
        Some(first.clone()),
        "cell1-cell2 untouched"
    );
    let out = plugin(cp, &["resync", "--all", "-n", NS]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout.matches(" resynced").count(), 2, "{out:?}");

    // --- Clear errors: not found, no permission, a cell without interconnects.
    let out = plugin(cp, &["diagnose", "nope", "-n", NS]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("CellInterconnect plugin/nope not found"),
        "{out:?}"
    );
    let out = plugin(cp, &["suspend", "--cell", "cell9", "-n", NS]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr
            .contains("no CellInterconnect has an endpoint in cell cell9"),
        "{out:?}"
    );
    let nobody = cp.kubeconfig_for("nobody", &[]);
    let out = plugin_as(&nobody, &["status", "-n", NS]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("no permission"), "{out:?}");
    let out = plugin_as(&nobody, &["disable", "cell1-cell2", "-n", NS]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("no permission"), "{out:?}");

    // A viewer may read cellnet objects and events but not Secrets: status works, diagnose
    // cannot confirm the Secret (UNKNOWN, exit 3), writes are refused.
    cp.apply(NS, VIEWER_RBAC);
    let viewer = cp.kubeconfig_for("viewer", &[]);
    let out = plugin_as(&viewer, &["status", "-n", NS]);
    assert_eq!(out.code, 0, "{out:?}");
    let out = plugin_as(&viewer, &["diagnose", "cell1-cell2", "-n", NS]);
    assert_eq!(out.code, 3, "{out:?}");
    let secret_line = line_with(&out.stdout, "Secret plugin/bgp-pw present");
    assert!(secret_line.contains("UNKNOWN"), "{out:?}");
    assert!(out.stdout.contains("no permission"), "{out:?}");
    let out = plugin_as(&viewer, &["suspend", "cell1-cell2", "-n", NS]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("no permission"), "{out:?}");

    // --- disable --cell cell3: exactly cell3's link goes administratively down on both speakers.
    let out = plugin(
        cp,
        &[
            "disable",
            "--cell",
            "cell3",
            "-n",
            NS,
            "--message",
            "cell3 maintenance CHG-42",
            "--wait",
        ],
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("plugin/cell1-cell3") && !out.stdout.contains("cell1-cell2"),
        "{out:?}"
    );
    // --wait: the controller has acted on the new generation.
    assert!(
        line_with(&out.stdout, "plugin/cell1-cell3 after").contains("Ready=False AdministrativelyDown"),
        "{out:?}"
    );
    let spec = &cic(cp, "cell1-cell3")["spec"];
    assert_eq!(spec["adminState"], "Disabled");
    assert_eq!(spec["adminMessage"], "cell3 maintenance CHG-42");
    assert_eq!(cic(cp, "cell1-cell2")["spec"]["adminState"], "Enabled");
    wait_condition::<CellInterconnect>(
        cp,
        NS,
        "cell1-cell3",
        "Ready",
        "False",
        Some("AdministrativelyDown"),
        WAIT,
    );
    wait_for("both speakers Idle for cell1-cell3", WAIT, || {
        let states = (a.session_state(ip(3)), c.session_state(ip(1)));
        (
            (states == (Some(IDLE), Some(IDLE))).then_some(()),
            format!("{states:?} {:?}", a.neighbor_json(ip(3))),
        )
    });
    assert_eq!(a.session_state(ip(2)), Some(ESTABLISHED), "cell1-cell2 untouched");
    let out = plugin(cp, &["status", "-n", NS, "--cell", "cell3"]);
    assert!(
        line_with(&out.stdout, "cell1-cell3").contains("False AdministrativelyDown"),
        "{out:?}"
    );
    let out = plugin(cp, &["diagnose", "cell1-cell3", "-n", NS]);
    assert_eq!(out.code, 3, "disabled is not healthy: {out:?}");
    assert!(
        line_with(&out.stdout, "administratively enabled").contains("FAILED"),
        "{out:?}"
    );
    assert!(out.stdout.contains("cell3 maintenance CHG-42"), "{out:?}");
    let out = plugin(cp, &["enable", "--cell", "cell3", "-n", NS]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(cic(cp, "cell1-cell3")["spec"]["adminState"], "Enabled");
    wait_ready::<CellInterconnect>(cp, NS, "cell1-cell3", WAIT);
    assert_eq!(a.session_state(ip(3)), Some(ESTABLISHED));
    assert_eq!(c.session_state(ip(1)), Some(ESTABLISHED));

    // --- suspend / resume.
    let out = plugin(cp, &["suspend", "cell1-cell2", "-n", NS, "--wait"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("Ready=False Suspended"), "{out:?}");
    assert_eq!(cic(cp, "cell1-cell2")["spec"]["suspend"], true);
    assert_eq!(cic(cp, "cell1-cell3")["spec"]["suspend"], false);
    let out = plugin(cp, &["diagnose", "cell1-cell2", "-n", NS]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(
        line_with(&out.stdout, "not suspended").contains("FAILED"),
        "{out:?}"
    );
    let out = plugin(cp, &["resume", "--cell", "cell2", "-n", NS]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("plugin/cell1-cell2") && !out.stdout.contains("cell1-cell3"),
        "{out:?}"
    );
    assert_eq!(cic(cp, "cell1-cell2")["spec"]["suspend"], false);
    wait_ready::<CellInterconnect>(cp, NS, "cell1-cell2", WAIT);

    // --- Broken: the password Secret is missing.
    let (ok, _, err) = cp.kubectl_run(&["delete", "secret", "-n", NS, "bgp-pw"]);
    assert!(ok, "{err}");
    let out = plugin(cp, &["resync", "cell1-cell2", "-n", NS]);
    assert_eq!(out.code, 0, "{out:?}");
    wait_condition::<CellInterconnect>(
        cp,
        NS,
        "cell1-cell2",
        "Ready",
        "False",
        Some("SecretNotFound"),
        WAIT,
    );
    let out = plugin(cp, &["diagnose", "cell1-cell2", "-n", NS]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(
        line_with(&out.stdout, "Secret plugin/bgp-pw present").contains("FAILED"),
        "{out:?}"
    );
    assert!(
        line_with(&out.stdout, "BROKEN").contains("Secret plugin/bgp-pw present"),
        "first break: {out:?}"
    );
    let out = plugin(cp, &["cells", "-n", NS]);
    assert!(row(&out.stdout, "cell2").contains("0/1"), "{out:?}");
    // The Secret back, but without the key the interconnect names.
    cp.apply(NS, &secret("passwd"));
    let out = plugin(cp, &["diagnose", "cell1-cell2", "-n", NS]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(
        line_with(&out.stdout, "no key").contains(r#"no key "password" in it (keys: passwd)"#),
        "{out:?}"
    );
    cp.kubectl_run(&["delete", "secret", "-n", NS, "bgp-pw"]);
    cp.apply(NS, &secret("password"));
    wait_ready::<CellInterconnect>(cp, NS, "cell1-cell2", WAIT);

    // --- Broken: the peer removed by hand on cell2; the controller puts it back, the flap shows.
    b.neighbor_del_by_hand(ip(1));
    wait_for("a flap counted on cell1-cell2", WAIT, || {
        let obj = cp
            .get::<CellInterconnect>(NS, "cell1-cell2")
            .expect("interconnect");
        let flaps = |side: Option<&SideStatus>| side.map_or(0, |s| s.flaps);
        let total = flaps(obj.local()) + flaps(obj.remote());
        ((total >= 1).then_some(()), format!("{:?}", obj.status))
    });
    wait_ready::<CellInterconnect>(cp, NS, "cell1-cell2", WAIT);
    let out = plugin(cp, &["status", "-n", NS, "--cell", "cell2", "-o", "json"]);
    let doc: Value = serde_json::from_str(&out.stdout).unwrap();
    let link = &doc["cells"][0]["interconnects"][0];
    let flaps = link["local"]["flaps"].as_u64().unwrap() + link["remote"]["flaps"].as_u64().unwrap();
    assert!(flaps >= 1, "{out:?}");
    let out = plugin(cp, &["diagnose", "cell1-cell2", "-n", NS]);
    assert_eq!(out.code, 0, "repaired: {out:?}");
    assert!(out.stdout.contains("flap(s)"), "{out:?}");

    // --- Broken: cell2's speaker killed.
    b.kill();
    let (obj, _) = wait_condition::<CellInterconnect>(cp, NS, "cell1-cell2", "Ready", "False", None, WAIT);
    report(&format!(
        "speaker killed: Ready False {:?}",
        obj.condition("Ready")
    ));
    let out = plugin(cp, &["diagnose", "cell1-cell2", "-n", NS, "-o", "yaml"]);
    assert_eq!(out.code, 3, "unhealthy, as without -o: {out:?}");
    let doc: Value = serde_yaml::from_str(&out.stdout).expect("diagnose -o yaml");
    assert_eq!(doc["healthy"], false, "{doc}");
    assert!(
        doc["breaksAt"]["title"]
            .as_str()
            .unwrap()
            .contains("speaker reachable"),
        "{doc}"
    );
    let out = plugin(cp, &["cells", "-n", NS, "-o", "json"]);
    let doc: Value = serde_json::from_str(&out.stdout).expect("cells -o json");
    let down = &doc["cells"][0]["notEstablished"];
    assert_eq!(down[0]["interconnect"], "cell1-cell2", "{doc}");
    let out = plugin(cp, &["diagnose", "cell1-cell2", "-n", NS, "--probe"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stdout.contains("BROKEN"), "{out:?}");
    assert!(
        line_with(&out.stdout, "probe: remote BGP port 127.0.4.2:1790").contains("FAILED"),
        "{out:?}"
    );
    assert!(
        out.stdout.contains("TCP connect to 127.0.4.2:1790 failed"),
        "{out:?}"
    );
    assert!(
        line_with(&out.stdout, "probe: local BGP port 127.0.4.1:1790").contains("OK"),
        "{out:?}"
    );
    let out = plugin(cp, &["cells", "-n", NS]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(row(&out.stdout, "cell2").contains("0/1"), "{out:?}");
    assert!(row(&out.stdout, "cell2").contains("cell1-cell2 ("), "{out:?}");
    let out = plugin(cp, &["status", "-n", NS, "--cell", "cell2"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(line_with(&out.stdout, "cell1-cell2").contains("False"), "{out:?}");
    // The speaker comes back bare; the controller reconfigures it.
    b.restart_bare();
    let out = plugin(cp, &["resync", "cell1-cell2", "-n", NS]);
    assert_eq!(out.code, 0, "{out:?}");
    wait_ready::<CellInterconnect>(cp, NS, "cell1-cell2", WAIT);
    let out = plugin(cp, &["diagnose", "cell1-cell2", "-n", NS, "--probe"]);
    assert_eq!(out.code, 0, "recovered: {out:?}");
    // --- All namespaces: the same cells from -A, names qualified.
    let out = plugin(cp, &["cells", "-A"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        row(&out.stdout, "cell1").contains("plugin/cell1-gobgp"),
        "{out:?}"
    );
    let out = plugin(cp, &["status", "-A", "--cell", "cell2"]);
    assert!(out.stdout.contains("plugin/cell1-cell2"), "{out:?}");
    let out = plugin(cp, &["diagnose", "cell1-cell2", "-A"]);
    assert_eq!(out.code, 1, "diagnose needs one namespace: {out:?}");
    external_router_stopped(cp).await;

    // --- Broken: the controller is down. resync times out (exit 3); a spec change is not observed.
    controller.kill();
    let out = plugin(cp, &["resync", "cell1-cell2", "-n", NS, "--timeout", "2s"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(
        out.stderr.contains("not handled in 2s: plugin/cell1-cell2"),
        "{out:?}"
    );
    let out = plugin(
        cp,
        &["disable", "cell1-cell2", "-n", NS, "--wait", "--timeout", "2s"],
    );
    assert_eq!(out.code, 3, "the change is made, not acted on: {out:?}");
    assert!(out.stderr.contains("not observed in 2s"), "{out:?}");
    assert_eq!(cic(cp, "cell1-cell2")["spec"]["adminState"], "Disabled");
    let out = plugin(cp, &["diagnose", "cell1-cell2", "-n", NS]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(
        line_with(&out.stdout, "BROKEN").contains("controller has observed generation"),
        "first break is the controller: {out:?}"
    );
    routes_from_status(cp).await;
    report(&format!(
        "plugin end to end: {:.1} s",
        began.elapsed().as_secs_f64()
    ));
}

/// The `make demo` report (issue 19 item 5): a link to an external router that is not running.
/// `diagnose` without a name walks it (and only what is not Ready), `--probe` names the refused
/// BGP port as what explains the session that does not come up, and `cells` shows the broken
/// link on both cells' rows.
async fn external_router_stopped(cp: &ControlPlane) {
    let dc = manifests::endpoint("dc1-router")
        .cell("dc1")
        .address(addr(9))
        .asn(65409)
        .port(BGP_PORT)
        .yaml();
    let link = interconnect("cell1-dc1", "cell1-gobgp", "dc1-router").yaml();
    cp.apply(NS, &[dc, link].join("---\n"));
    wait_condition::<CellInterconnect>(cp, NS, "cell1-dc1", "Ready", "False", None, WAIT);
    let out = plugin(cp, &["diagnose", "-n", NS, "--probe"]);
    transcript("kubectl cellnet diagnose -n plugin --probe", &out);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(
        out.stdout
            .contains("Diagnosis of CellInterconnect plugin/cell1-dc1")
            && !out
                .stdout
                .contains("Diagnosis of CellInterconnect plugin/cell1-cell2"),
        "only what is not Ready: {out:?}"
    );
    let verdict = line_with(&out.stdout, "BROKEN");
    assert!(
        verdict.contains("breaks at \"probe: remote BGP port 127.0.4.9:1790")
            && verdict.contains("which explains \"local BGP session (cell cell1)\""),
        "the refused port explains the session: {out:?}"
    );
    let out = plugin(cp, &["cells", "-n", NS]);
    transcript("kubectl cellnet cells -n plugin", &out);
    for cell in ["cell1", "dc1"] {
        assert!(row(&out.stdout, cell).contains("cell1-dc1 ("), "{cell}: {out:?}");
    }
    let (ok, _, err) = cp.kubectl_run(&[
        "delete",
        "-n",
        NS,
        "cic/cell1-dc1",
        "iep/dc1-router",
        "--timeout=60s",
    ]);
    assert!(ok, "{err}");
    let out = plugin(cp, &["diagnose", "-n", NS]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("is Ready"), "{out:?}");
}

/// A condition as the controller writes it.
fn condition(type_: &str, status: &str, reason: Reason, message: &str) -> Value {
    json!({"type": type_, "status": status, "reason": reason.as_str(), "message": message,
           "lastTransitionTime": "2024-01-01T00:00:00Z"})
}

/// Merges `status` into the status of `name` through the status subresource, its conditions
/// extended by `extra` (a merge patch replaces a list whole).
async fn patch_status<K>(cp: &ControlPlane, name: &str, mut status: Value, extra: Value)
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + support::Kind
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let obj = cp.get::<K>(NS, name).expect("object");
    let mut conditions: Vec<Value> = obj
        .conditions()
        .iter()
        .filter(|c| c.type_ != extra["type"])
        .map(|c| serde_json::to_value(c).unwrap())
        .collect();
    conditions.push(extra);
    status["conditions"] = json!(conditions);
    Api::<K>::namespaced(cp.client().await, NS)
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": status})),
        )
        .await
        .unwrap_or_else(|e| panic!("status of {name}: {e}"));
}

/// `routes` and the routes steps of `diagnose` on route status written straight through the
/// status subresource (the controller is stopped, so nothing overwrites it): cell2 has not
/// accepted cell1's network, cell3's endpoint conflicts with cell1's.
async fn routes_from_status(cp: &ControlPlane) {
    for (endpoint, network) in [
        ("cell1-gobgp", "192.0.2.0/25"),
        ("cell2-gobgp", "192.0.2.128/25"),
        ("cell3-gobgp", "192.0.2.0/26"),
    ] {
        let patch = format!(r#"{{"spec":{{"networks":[{{"cidr":"{network}"}}]}}}}"#);
        let (ok, _, err) = cp.kubectl_run(&[
            "patch", "-n", NS, "iep", endpoint, "--type", "merge", "-p", &patch,
        ]);
        assert!(ok, "{err}");
    }
    let announced = condition(
        "NetworksAnnounced",
        "True",
        Reason::NetworksAnnounced,
        "all announced",
    );
    patch_status::<InfraEndpoint>(
        cp,
        "cell1-gobgp",
        json!({"networks": [{"cidr": "192.0.2.0/25", "name": "mgmt", "announced": true}]}),
        announced,
    )
    .await;
    // The controller's wording (controller/networks, endpoint/networks_step).
    let overlap = "overlaps 192.0.2.0/25 of InfraEndpoint cell1-gobgp (cell cell1)";
    let conflict = format!(
        "cell cell3: 192.0.2.0/26 {overlap}; neither is announced or accepted until one of them changes"
    );
    patch_status::<InfraEndpoint>(
        cp,
        "cell3-gobgp",
        json!({"networks": [{"cidr": "192.0.2.0/26", "announced": false, "message": overlap}]}),
        condition("NetworksAnnounced", "False", Reason::NetworkConflict, &conflict),
    )
    .await;
    let missing = "cell cell2 has not accepted 192.0.2.0/25 from cell cell1";
    patch_status::<CellInterconnect>(
        cp,
        "cell1-cell2",
        json!({
            "local": {"routes": {"advertised": 1, "received": 1, "accepted": 1, "rejected": 0}},
            "remote": {"routes": {"advertised": 1, "received": 0, "accepted": 0, "rejected": 2,
                                  "missing": ["192.0.2.0/25"], "missingCount": 1}},
        }),
        condition("RoutesExchanged", "False", Reason::RoutesMissing, missing),
    )
    .await;

    let out = plugin(cp, &["routes", "-n", NS]);
    assert_eq!(out.code, 0, "{out:?}");
    let words = |line: &str| line.split_whitespace().map(str::to_string).collect::<Vec<_>>();
    assert_eq!(
        words(row(&out.stdout, "cell1-cell2")),
        [
            "cell1-cell2",
            "False",
            "RoutesMissing",
            "local",
            "cell1",
            "cell1-gobgp",
            "1",
            "1",
            "1",
            "0",
            "0",
            "1000"
        ],
        "{out:?}"
    );
    assert_eq!(
        words(line_with(&out.stdout, "   cell2-gobgp   ")),
        ["remote", "cell2", "cell2-gobgp", "1", "0", "0", "2", "1", "1000"],
        "{out:?}"
    );
    assert!(
        out.stdout.contains(&format!("cell1-cell2 remote: {missing}")),
        "{out:?}"
    );
    assert!(
        out.stdout.contains(&format!(
            "cell3-gobgp: NetworksAnnounced False NetworkConflict: {conflict}"
        )),
        "{out:?}"
    );
    assert!(
        words(line_with(&out.stdout, "192.0.2.128/25")).contains(&"?".to_string()),
        "declared, not reported: {out:?}"
    );

    let out = plugin(cp, &["routes", "cell1-cell2", "-n", NS, "-o", "json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let doc: Value = serde_json::from_str(&out.stdout).expect("routes -o json");
    assert_versioned(&doc, "Routes");
    assert_eq!(doc["interconnects"].as_array().unwrap().len(), 1, "{doc}");
    let link = &doc["interconnects"][0];
    assert_eq!(link["routesExchanged"]["reason"], "RoutesMissing");
    assert_eq!(link["remote"]["routes"]["missing"][0], "192.0.2.0/25");
    assert_eq!(link["local"]["routes"]["accepted"], 1);
    assert_eq!(doc["endpoints"][0]["networks"][0]["name"], "mgmt");

    let out = plugin(cp, &["routes", "--cell", "cell3", "-n", NS]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("cell1-cell3") && !out.stdout.contains("cell1-cell2"),
        "{out:?}"
    );
    let out = plugin(cp, &["routes", "nope", "-n", NS]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("no CellInterconnect nope"), "{out:?}");

    let out = plugin(cp, &["diagnose", "cell1-cell2", "-n", NS]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(
        line_with(&out.stdout, "routes exchanged between cell cell1 and cell cell2").contains("FAILED"),
        "{out:?}"
    );
    assert!(
        out.stdout.contains(&format!("{missing} (RoutesMissing)")),
        "{out:?}"
    );
    assert!(
        line_with(&out.stdout, "local networks announced (cell cell1)").contains("OK"),
        "{out:?}"
    );
    let out = plugin(cp, &["diagnose", "cell1-cell3", "-n", NS]);
    assert!(
        line_with(&out.stdout, "remote networks announced (cell cell3)").contains("FAILED"),
        "{out:?}"
    );
    assert!(
        out.stdout.contains(&format!("NetworkConflict: {conflict}")),
        "{out:?}"
    );
    assert!(
        out.stdout.contains(&format!("192.0.2.0/26: {overlap}")),
        "{out:?}"
    );
}
