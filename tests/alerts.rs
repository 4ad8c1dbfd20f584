//! cellnet's alert rules (deploy/monitoring/cellnet-alerts.yaml) checked by Prometheus' own
//! promtool (Debian's `prometheus` package, installed by hack/prereqs.sh): the file is valid, the
//! unit tests of tests/alerts/ pass, every alert has a test where it fires and one where it stays
//! quiet, a runbook section in docs/operations.md and labels that name its cell(s).
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

const RULES: &str = "deploy/monitoring/cellnet-alerts.yaml";
const UNIT_TESTS: &str = "tests/alerts/cellnet-alerts_test.yaml";

fn yaml(path: &str) -> Value {
    let text = std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `promtool <args>` in `dir`: (success, stdout and stderr). Fails the test without promtool.
fn promtool(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("promtool not found ({e}): install it with `bash hack/prereqs.sh` (Debian's prometheus package)")
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn alerts() -> Vec<Value> {
    let rules = yaml(RULES);
    rules["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap().clone())
        .filter(|r| r.get("alert").is_some())
        .collect()
}

#[test]
fn promtool_checks_the_rules_file() {
    let (ok, out) = promtool(&repo(), &["check", "rules", RULES]);
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!("SUCCESS: {} rules found", alerts().len())),
        "{out}"
    );
}

#[test]
fn promtool_unit_tests_pass() {
    let (ok, out) = promtool(&repo(), &["test", "rules", UNIT_TESTS]);
    assert!(ok, "{out}");
}

/// The unit tests can fail: with every expression replaced by one that never fires, promtool
/// reports each alert's firing case as failed.
#[test]
fn promtool_unit_tests_fail_when_an_alert_never_fires() {
    let dir = tempfile::tempdir().unwrap();
    let rules = std::fs::read_to_string(repo().join(RULES)).unwrap();
    let silenced: String = rules
        .lines()
        .map(|l| match l.trim_start().starts_with("expr:") {
            true => "        expr: vector(1) == 2".to_string(),
            false => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(dir.path().join("rules.yaml"), silenced).unwrap();
    let tests = std::fs::read_to_string(repo().join(UNIT_TESTS))
        .unwrap()
        .replace("../../deploy/monitoring/cellnet-alerts.yaml", "rules.yaml");
    std::fs::write(dir.path().join("test.yaml"), tests).unwrap();
    let (ok, out) = promtool(dir.path(), &["test", "rules", "test.yaml"]);
    assert!(!ok, "{out}");
    for alert in alerts() {
        let name = alert["alert"].as_str().unwrap();
        assert!(
            out.contains(&format!("alertname: {name},")),
            "{name} never failed:\n{out}"
        );
    }
}

/// Each alert is tested firing (an expected alert) and quiet (no alert expected at some time).
#[test]
fn every_alert_has_a_firing_and_a_quiet_unit_test() {
    let tests = yaml(UNIT_TESTS);
    let (mut firing, mut quiet) = (BTreeSet::new(), BTreeSet::new());
    for case in tests["tests"].as_array().unwrap() {
        for check in case["alert_rule_test"].as_array().unwrap() {
            let name = check["alertname"].as_str().unwrap().to_string();
            match check["exp_alerts"].as_array().is_some_and(|a| !a.is_empty()) {
                true => firing.insert(name),
                false => quiet.insert(name),
            };
        }
    }
    for alert in alerts() {
        let name = alert["alert"].as_str().unwrap();
        assert!(firing.contains(name), "{name}: no unit test where it fires");
        assert!(quiet.contains(name), "{name}: no unit test where it stays quiet");
    }
}

/// Every alert links a section of docs/operations.md that exists, has a severity, a summary and
/// a description, and (but for the controller-wide ones) names the cell(s) in its labels.
#[test]
fn every_alert_has_a_runbook_section_and_names_its_cells() {
    let docs = std::fs::read_to_string(repo().join("docs/operations.md")).unwrap();
    let anchors: BTreeSet<String> = docs
        .lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| l.trim_start_matches('#').trim().to_lowercase().replace(' ', "-"))
        .collect();
    let controller_wide = [
        "CellnetReconcileErrors",
        "CellnetControllerAbsent",
        "CellnetLeaderMissing",
    ];
    for alert in alerts() {
        let name = alert["alert"].as_str().unwrap();
        let url = alert["annotations"]["runbook_url"].as_str().unwrap_or_default();
        let anchor = url
            .strip_prefix("https://github.com/cellnet/cellnet/blob/main/docs/operations.md#")
            .unwrap_or_else(|| panic!("{name}: runbook_url {url:?} is not into docs/operations.md"));
        assert_eq!(anchor, name.to_lowercase(), "{name}: anchor");
        assert!(
            anchors.contains(anchor),
            "{name}: docs/operations.md has no heading for #{anchor}"
        );
        assert!(
            ["critical", "warning"].contains(&alert["labels"]["severity"].as_str().unwrap_or_default()),
            "{name}: severity"
        );
        for field in ["summary", "description"] {
            assert!(alert["annotations"][field].is_string(), "{name}: no {field}");
        }
        let expr = alert["expr"].as_str().unwrap();
        if !controller_wide.contains(&name) {
            let metric = expr
                .split(['{', '(', ' '])
                .find(|w| w.starts_with("cellnet_"))
                .unwrap();
            assert!(
                ["cellnet_interconnect_", "cellnet_sdn_reachable"]
                    .iter()
                    .any(|p| metric.starts_with(p)),
                "{name}: {metric} is not one of the series that carry the cell"
            );
            assert!(
                alert["annotations"]["summary"]
                    .as_str()
                    .unwrap()
                    .contains("$labels."),
                "{name}"
            );
        }
    }
}
