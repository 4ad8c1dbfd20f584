//! What the API server counts itself, from its own `/metrics`: the write requests it answered
//! and the watch streams it holds open, by resource.
use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

/// The API server's metrics as text (empty if they cannot be read now).
pub async fn scrape(client: &kube::Client) -> String {
    let req = http::Request::get("/metrics").body(Vec::new()).expect("request");
    client.request_text(req).await.unwrap_or_default()
}

/// The value of label `name` in one exposition line.
fn label(line: &str, name: &str) -> Option<String> {
    let key = format!("{name}=\"");
    let start = line.find(&key)? + key.len();
    Some(line[start..].split('"').next()?.to_string())
}

fn value(line: &str) -> f64 {
    line.rsplit(' ')
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// Write requests answered (`apiserver_request_total`), by `resource[/subresource]`.
pub fn writes(text: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with("apiserver_request_total{")) {
        let verb = label(line, "verb").unwrap_or_default();
        if !["POST", "PUT", "PATCH", "APPLY", "DELETE"].contains(&verb.as_str()) {
            continue;
        }
        let resource = label(line, "resource").unwrap_or_default();
        let key = match label(line, "subresource").unwrap_or_default() {
            sub if sub.is_empty() => resource,
            sub => format!("{resource}/{sub}"),
        };
        *out.entry(key).or_insert(0.0) += value(line);
    }
    out
}

/// Watch streams open now (`apiserver_longrunning_requests{verb="WATCH"}`), by resource, both
/// scopes (cluster-wide and per namespace) summed.
pub fn watch_streams(text: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    let lines = text
        .lines()
        .filter(|l| l.starts_with("apiserver_longrunning_requests{"))
        .filter(|l| label(l, "verb").as_deref() == Some("WATCH"));
    for line in lines {
        let resource = label(line, "resource").unwrap_or_default();
        *out.entry(resource).or_insert(0.0) += value(line);
    }
    out
}

/// Watch streams once the API server counts one more on `resource` than in `before` (a
/// watcher sends its WATCH only after its first LIST is in, so a reading right after the list
/// can miss it); waits at most 10 s.
pub async fn one_more_watch(
    client: &kube::Client,
    before: &BTreeMap<String, f64>,
    resource: &str,
) -> BTreeMap<String, f64> {
    let want = before.get(resource).copied().unwrap_or(0.0) + 1.0;
    let began = std::time::Instant::now();
    loop {
        let now = watch_streams(&scrape(client).await);
        let open = now.get(resource).copied().unwrap_or(0.0);
        if open >= want || began.elapsed() > std::time::Duration::from_secs(10) {
            return now;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// `after - before` per key, keeping the keys that changed, as a JSON object.
pub fn delta(after: &BTreeMap<String, f64>, before: &BTreeMap<String, f64>) -> Map<String, Value> {
    let keys: std::collections::BTreeSet<&String> = after.keys().chain(before.keys()).collect();
    keys.into_iter()
        .filter_map(|k| {
            let d = after.get(k).copied().unwrap_or(0.0) - before.get(k).copied().unwrap_or(0.0);
            (d != 0.0).then(|| (k.clone(), json!(d)))
        })
        .collect()
}

/// `name value, ...`, largest first, for a report line.
pub fn describe(figures: &Map<String, Value>) -> String {
    let mut list: Vec<(&String, f64)> = figures
        .iter()
        .map(|(k, v)| (k, v.as_f64().unwrap_or(0.0)))
        .collect();
    list.sort_by(|a, b| b.1.total_cmp(&a.1));
    list.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}
