//! The walk as printed: one line per step with its evidence below, then the verdict (where it
//! breaks, or that every step is ok).
use std::fmt::Write as _;

use serde_json::{Value, json};

use super::super::output::{Color, Style};
use super::{Layer, Step, Verdict};

/// The `-o json` / `-o yaml` body: the steps with their verdicts and evidence, whether all are
/// ok, and the first step that is not (`null` when healthy).
pub fn document(ns: &str, name: &str, steps: &[Step]) -> Value {
    let first = steps.iter().find(|s| s.verdict != Verdict::Ok);
    let steps: Vec<Value> = steps
        .iter()
        .map(|s| json!({"title": s.title, "verdict": s.verdict.label().0, "evidence": s.evidence}))
        .collect();
    json!({
        "interconnect": {"namespace": ns, "name": name},
        "healthy": first.is_none(),
        "breaksAt": first.map(|s| json!({"title": s.title, "verdict": s.verdict.label().0})),
        "steps": steps,
    })
}

pub fn walk(style: &Style, ns: &str, name: &str, steps: &[Step]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}",
        style.bold(&format!("Diagnosis of CellInterconnect {ns}/{name}"))
    );
    for s in steps {
        let (label, colour) = s.verdict.label();
        let padded = format!("{label:<8}");
        let _ = writeln!(out, "  {} {}", style.paint(&padded, Some(colour)), s.title);
        for e in &s.evidence {
            let _ = writeln!(out, "           {e}");
        }
    }
    out.push('\n');
    let _ = writeln!(out, "{}", conclusion(style, steps));
    out
}

/// `HEALTHY: ...`, or `BROKEN:` with the step that explains the others and how many are not ok.
fn conclusion(style: &Style, steps: &[Step]) -> String {
    let failed: Vec<&Step> = steps.iter().filter(|s| s.verdict != Verdict::Ok).collect();
    let Some(first) = failed.first() else {
        return format!("{} every step is ok", style.paint("HEALTHY:", Some(Color::Green)));
    };
    let cause = deepest(&failed);
    let what = if cause.verdict == Verdict::Failed {
        "breaks at"
    } else {
        "cannot confirm"
    };
    let explains = if std::ptr::eq(cause, *first) {
        String::new()
    } else {
        format!(", which explains \"{}\"", first.title)
    };
    format!(
        "{} {what} \"{}\"{}{explains} ({} of {} steps not ok)",
        style.paint("BROKEN:", Some(Color::Red)),
        cause.title,
        cause
            .evidence
            .first()
            .map(|e| format!(": {e}"))
            .unwrap_or_default(),
        failed.len(),
        steps.len()
    )
}

/// The step that explains the walk: the first one not ok, unless it is a BGP session and a
/// failure lower in the stack (a refused BGP port) explains it; a configuration failure comes
/// first whatever follows.
pub fn deepest<'a>(failed: &[&'a Step]) -> &'a Step {
    let first = failed[0];
    if first.layer == Layer::Config {
        return first;
    }
    failed
        .iter()
        .filter(|s| s.verdict == Verdict::Failed && s.layer > first.layer)
        // The deepest layer; the first such step on a tie.
        .min_by_key(|s| std::cmp::Reverse(s.layer))
        .copied()
        .unwrap_or(first)
}

#[cfg(test)]
mod tests {
    use super::super::step;
    use super::*;

    #[test]
    fn names_the_first_step_not_ok() {
        let steps = [
            step("a", Verdict::Ok, vec![]),
            step("b", Verdict::Unknown, vec!["why".into(), "more".into()]),
            step("c", Verdict::Failed, vec![]),
        ];
        let text = walk(&Style { colour: false }, "ns", "x", &steps);
        assert_eq!(
            text,
            "Diagnosis of CellInterconnect ns/x\n  OK       a\n  UNKNOWN  b\n           why\n           more\n  \
             FAILED   c\n\nBROKEN: cannot confirm \"b\": why (2 of 3 steps not ok)\n"
        );
        let healthy = walk(&Style { colour: false }, "ns", "x", &steps[..1]);
        assert!(healthy.ends_with("\n\nHEALTHY: every step is ok\n"), "{healthy}");
    }

    #[test]
    fn a_refused_bgp_port_explains_an_idle_session() {
        let steps = [
            step("local peer configured", Verdict::Ok, vec![]),
            step(
                "local BGP session (cell cell1)",
                Verdict::Failed,
                vec!["Idle".into()],
            )
            .at(Layer::Session),
            step("Ready condition", Verdict::Failed, vec![]),
            step("probe: local BGP port", Verdict::Ok, vec![]).at(Layer::Transport),
            step(
                "probe: remote BGP port 192.0.2.2:179 (cell dc1) from here",
                Verdict::Failed,
                vec!["TCP connect to 192.0.2.2:179 failed after 0.1 ms: Connection refused".into()],
            )
            .at(Layer::Transport),
        ];
        let text = walk(&Style { colour: false }, "ns", "x", &steps);
        assert!(
            text.ends_with(
                "BROKEN: breaks at \"probe: remote BGP port 192.0.2.2:179 (cell dc1) from here\": TCP connect to \
                 192.0.2.2:179 failed after 0.1 ms: Connection refused, which explains \"local BGP session (cell \
                 cell1)\" (3 of 5 steps not ok)\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_configuration_failure_is_named_before_anything_below_it() {
        let steps = [
            step("Secret present", Verdict::Failed, vec![]),
            step("local BGP session", Verdict::Failed, vec![]).at(Layer::Session),
            step("probe", Verdict::Failed, vec![]).at(Layer::Transport),
        ];
        let failed: Vec<&Step> = steps.iter().collect();
        assert_eq!(deepest(&failed).title, "Secret present");
        // Without a probe, the session itself is the verdict.
        assert_eq!(deepest(&failed[1..2]).title, "local BGP session");
    }

    #[test]
    fn the_document_names_the_first_step_not_ok() {
        let steps = [
            step("a exists", Verdict::Ok, vec![]),
            step("b reachable", Verdict::Unknown, vec!["why".into()]),
            step("c up", Verdict::Failed, vec![]),
        ];
        let doc = document("ns", "x", &steps);
        assert_eq!(doc["healthy"], false);
        assert_eq!(
            doc["breaksAt"],
            json!({"title": "b reachable", "verdict": "UNKNOWN"})
        );
        assert_eq!(doc["steps"][1]["evidence"], json!(["why"]));
        assert_eq!(document("ns", "x", &steps[..1])["breaksAt"], Value::Null);
    }
}
