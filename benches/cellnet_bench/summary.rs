//! Figures over `--repeat` rounds: the median, min and max of each, and the printed table.
use serde_json::{Map, Value, json};

/// Figures measured once per round (floor and controller phases).
pub const PER_ROUND: &[&str] = &[
    "floor_s",
    "routes_floor_s",
    "apply_s",
    "push_s",
    "push_after_apply_s",
    "push_p50_s",
    "push_p99_s",
    "ready_s",
    "routes_s",
    "create_to_peer_p50_s",
    "create_to_peer_p99_s",
    "create_to_ready_p50_s",
    "create_to_ready_p99_s",
    "api_writes_per_interconnect",
];

/// Figures measured once, after the last round.
const ONCE: &[&str] = &[
    "steady_sdn_writes",
    "steady_status_writes",
    "steady_sdn_reads",
    "steady_sdn_reads_per_speaker",
    "drift_p50_s",
    "drift_p99_s",
    "rss_mib",
    "cpu_percent",
    "rss_10k_mib",
    "total_s",
];

/// The median (the mean of the middle two for an even count), min and max of `values`.
fn spread(mut values: Vec<f64>) -> Option<(f64, f64, f64)> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let median = (values[(n - 1) / 2] + values[n / 2]) / 2.0;
    Some((median, values[0], values[n - 1]))
}

/// Adds to `out` the median of every per-round figure (same keys as one round gives) and
/// `spread`: `{key: {median, min, max}}`; the ratios to the floor are ratios of medians.
pub fn summarize(rounds: &[Value], out: &mut Map<String, Value>) {
    let mut spreads = Map::new();
    for key in PER_ROUND {
        let values: Vec<f64> = rounds.iter().filter_map(|r| r[*key].as_f64()).collect();
        let Some((median, min, max)) = spread(values) else {
            out.insert(key.to_string(), Value::Null);
            continue;
        };
        out.insert(key.to_string(), json!(median));
        spreads.insert(key.to_string(), json!({"median": median, "min": min, "max": max}));
    }
    let ratio = |a: &str, b: &str| Some(out.get(a)?.as_f64()? / out.get(b)?.as_f64()?);
    let ready_over_floor = ratio("ready_s", "floor_s");
    let routes_over_floor = ratio("routes_s", "routes_floor_s");
    out.insert("ready_over_floor".into(), json!(ready_over_floor));
    out.insert("routes_over_floor".into(), json!(routes_over_floor));
    out.insert("spread".into(), Value::Object(spreads));
    let last = rounds.last().cloned().unwrap_or_default();
    for key in [
        "api_writes",
        "api_writes_by_resource",
        "watch_streams_by_resource",
    ] {
        out.insert(key.into(), last[key].clone());
    }
    out.insert("rounds".into(), Value::Array(rounds.to_vec()));
}

fn cell(v: &Value) -> String {
    v.as_f64().map_or_else(|| "-".to_string(), |x| format!("{x:.2}"))
}

/// The figures as a table: per-round figures with median, min and max; the rest once.
pub fn print_table(speakers: u16, f: &Value) {
    println!();
    println!(
        "cellnet-bench: {speakers} speakers, {} interconnects, {} round(s)",
        f["interconnects"], f["repeat"]
    );
    println!("{:<30} {:>10} {:>10} {:>10}", "figure", "median", "min", "max");
    for key in PER_ROUND {
        let s = &f["spread"][*key];
        println!(
            "{key:<30} {:>10} {:>10} {:>10}",
            cell(&s["median"]),
            cell(&s["min"]),
            cell(&s["max"])
        );
    }
    for key in ["ready_over_floor", "routes_over_floor"] {
        println!("{key:<30} {:>10}   (ratio of medians)", cell(&f[key]));
    }
    for key in ["watch_streams_by_resource", "api_writes_by_resource"] {
        println!("{key:<30} {}", f[key]);
    }
    for key in ONCE {
        println!("{key:<30} {:>10}", cell(&f[*key]));
    }
}
