use super::*;

fn obj(gen_: i64, observed: i64, rv: &str, last: Option<&str>) -> Value {
    let mut status = json!({"observedGeneration": observed});
    if let Some(l) = last {
        status["lastHandledReconcileAt"] = json!(l);
    }
    json!({"metadata": {"generation": gen_, "resourceVersion": rv}, "status": status})
}

#[test]
fn handled_by_the_reported_value() {
    let zero = Duration::ZERO;
    assert_eq!(
        handled(&obj(1, 1, "5", Some("t1")), "t1", "5", zero),
        Handled::Yes
    );
    assert_eq!(
        handled(&obj(1, 1, "6", Some("t0")), "t1", "5", Duration::from_secs(99)),
        Handled::No
    );
}

#[test]
fn fallback_without_the_field() {
    let zero = Duration::ZERO;
    assert_eq!(handled(&obj(2, 1, "6", None), "t", "5", zero), Handled::No);
    assert_eq!(handled(&obj(2, 2, "5", None), "t", "5", zero), Handled::No);
    assert_eq!(handled(&obj(2, 2, "6", None), "t", "5", zero), Handled::Assumed);
    assert_eq!(
        handled(&obj(2, 2, "5", None), "t", "5", QUIET_FALLBACK),
        Handled::Assumed
    );
}
