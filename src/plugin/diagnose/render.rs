//! The walk as printed: one line per step with its evidence below, then the verdict (where it
//! breaks, or that every step is ok).
use std::fmt::Write as _;

use serde_json::{Value, json};

use super::super::output::{Color, Style};
use super::{Step, Verdict};

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

/// `HEALTHY: ...`, or `BROKEN:` with the first step not ok and how many are not.
fn conclusion(style: &Style, steps: &[Step]) -> String {
    let failed: Vec<&Step> = steps.iter().filter(|s| s.verdict != Verdict::Ok).collect();
    let Some(first) = failed.first() else {
        return format!("{} every step is ok", style.paint("HEALTHY:", Some(Color::Green)));
    };
    let what = if first.verdict == Verdict::Failed {
        "breaks at"
    } else {
        "cannot confirm"
    };
    format!(
        "{} {what} \"{}\"{} ({} of {} steps not ok)",
        style.paint("BROKEN:", Some(Color::Red)),
        first.title,
        first
            .evidence
            .first()
            .map(|e| format!(": {e}"))
            .unwrap_or_default(),
        failed.len(),
        steps.len()
    )
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
