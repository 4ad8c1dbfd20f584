//! `kubectl cellnet diagnose`: walks the chain of one interconnect, says where it breaks.
use std::time::{Duration, Instant};

use clap::Args;
use k8s_openapi::api::core::v1::{Event, Secret};
use kube::ResourceExt;
use kube::api::{Api, ListParams};

use super::output::{Color, age, shorten};
use super::status::{ready_of, since};
use super::{Ctx, EXIT_OK, EXIT_UNHEALTHY, explain};
use crate::api::{AdminState, InfraEndpoint, SdnKind, SessionState, SideStatus};

#[derive(Args, Debug, Clone, Default)]
pub struct DiagnoseArgs {
    /// The CellInterconnect to diagnose.
    pub name: String,
    /// Also open a TCP connection to each endpoint's BGP port from here (round-trip time).
    #[arg(long)]
    pub probe: bool,
    /// Timeout of each --probe connection.
    #[arg(long, default_value = "3s", value_parser = super::parse_duration)]
    pub probe_timeout: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    Failed,
    Unknown,
}

impl Verdict {
    fn label(self) -> (&'static str, Color) {
        match self {
            Self::Ok => ("OK", Color::Green),
            Self::Failed => ("FAILED", Color::Red),
            Self::Unknown => ("UNKNOWN", Color::Yellow),
        }
    }
}

/// One step of the walk, with its evidence.
#[derive(Debug)]
pub struct Step {
    pub title: String,
    pub verdict: Verdict,
    pub evidence: Vec<String>,
}

fn step(title: impl Into<String>, verdict: Verdict, evidence: Vec<String>) -> Step {
    Step {
        title: title.into(),
        verdict,
        evidence,
    }
}

/// The side of a failure message in Ready: "cell X -> cell Y (...): ...".
fn failure_is_about(cell: &str, message: &str) -> bool {
    message.starts_with(&format!("cell {cell} -> "))
}

const UNREACHABLE_REASONS: &[&str] = &["SdnUnreachable", "SdnAuthFailed", "SdnTlsFailed"];

/// Steps for one managed side: speaker reachable, peer configured, session.
fn side_steps(
    which: &str,
    ep: &InfraEndpoint,
    side: Option<&SideStatus>,
    ready: &(String, String, String),
    phases: &mut [Vec<Step>; 3],
) {
    let cell = &ep.spec.cell;
    let url = ep.spec.sdn.as_ref().map(|s| s.url.clone()).unwrap_or_default();
    let kind = ep
        .spec
        .sdn
        .as_ref()
        .map(|s| SdnKind::from(Some(s)))
        .unwrap_or(SdnKind::External);
    let kind_name = serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let Some(side) = side else {
        phases[0].push(step(
            format!("{which} speaker reachable (cell {cell}, {kind_name} {url})"),
            Verdict::Unknown,
            vec!["status has no entry for this side yet".into()],
        ));
        return;
    };
    let (_, reason, message) = ready;
    let ep_unreachable = ep.status.as_ref().and_then(|s| s.sdn_reachable) == Some(false);
    let side_failed_unreachable = side.message.is_some()
        && UNREACHABLE_REASONS.contains(&reason.as_str())
        && failure_is_about(cell, message);
    let reachable = if ep_unreachable || side_failed_unreachable {
        let mut ev = vec![];
        if let Some(m) = &side.message {
            ev.push(format!("status.{which}.message: {m}"));
        }
        if ep_unreachable {
            ev.push(format!(
                "InfraEndpoint {} status.sdnReachable: false",
                ep.name_any()
            ));
        }
        phases[0].push(step(
            format!("{which} speaker reachable (cell {cell}, {kind_name} {url})"),
            Verdict::Failed,
            ev,
        ));
        false
    } else if side.message.is_none() && side.session_state != SessionState::Unknown {
        phases[0].push(step(
            format!("{which} speaker reachable (cell {cell}, {kind_name} {url})"),
            Verdict::Ok,
            vec!["the controller read the session from it".into()],
        ));
        true
    } else if side.message.is_some() {
        phases[0].push(step(
            format!("{which} speaker reachable (cell {cell}, {kind_name} {url})"),
            Verdict::Ok,
            vec![format!(
                "it answered, but: {}",
                side.message.clone().unwrap_or_default()
            )],
        ));
        true
    } else {
        phases[1].push(step(
            format!("{which} speaker reachable (cell {cell}, {kind_name} {url})"),
            Verdict::Unknown,
            vec!["no session state recorded yet".into()],
        ));
        false
    };
    let peer = side.peer_address.clone().unwrap_or_else(|| "?".into());
    let title = format!("{which} peer {peer} configured on cell {cell}'s speaker");
    if !reachable {
        phases[1].push(step(
            title,
            Verdict::Unknown,
            vec![format!(
                "speaker not reachable; last known: configured={}",
                side.configured
            )],
        ));
    } else if side.configured && side.message.is_none() {
        phases[1].push(step(title, Verdict::Ok, vec![]));
    } else {
        let why = side
            .message
            .clone()
            .unwrap_or_else(|| "status.configured is false".into());
        phases[1].push(step(title, Verdict::Failed, vec![why]));
    }
    let title = format!("{which} BGP session (cell {cell})");
    let mut ev = vec![format!(
        "{:?} for {}, {} flap(s)",
        side.session_state,
        since(side),
        side.flaps
    )];
    if let Some(t) = &side.established_since
        && side.session_state == SessionState::Established
    {
        ev[0] = format!(
            "Established since {} ({} ago), {} flap(s)",
            t.0,
            age(t),
            side.flaps
        );
    }
    if let Some(e) = &side.last_error {
        ev.push(format!("last error: {e}"));
    }
    let verdict = if !reachable {
        ev.insert(0, "speaker not reachable; last known state below".into());
        Verdict::Unknown
    } else if side.session_state == SessionState::Established {
        Verdict::Ok
    } else {
        Verdict::Failed
    };
    phases[2].push(step(title, verdict, ev));
}

async fn secret_step(ctx: &Ctx, ns: &str, name: &str, key: Option<&str>, purpose: &str) -> Step {
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let title = format!("Secret {ns}/{name} present ({purpose})");
    // The value is read to check the key, never printed.
    match api.get_opt(name).await {
        Ok(Some(secret)) => {
            let rv = format!(
                "resourceVersion {}",
                secret.resource_version().unwrap_or_default()
            );
            let has_key = |k: &str| {
                secret.data.as_ref().is_some_and(|d| d.contains_key(k))
                    || secret.string_data.as_ref().is_some_and(|d| d.contains_key(k))
            };
            match key {
                Some(k) if !has_key(k) => {
                    let mut keys: Vec<String> = secret.data.iter().flat_map(|d| d.keys().cloned()).collect();
                    keys.sort();
                    step(
                        title,
                        Verdict::Failed,
                        vec![format!("no key {k:?} in it (keys: {}); {rv}", keys.join(", "))],
                    )
                }
                _ => step(title, Verdict::Ok, vec![rv]),
            }
        }
        Ok(None) => step(
            title,
            Verdict::Failed,
            vec![format!("Secret {ns}/{name} does not exist")],
        ),
        Err(e) => step(
            title,
            Verdict::Unknown,
            vec![format!("{:#}", explain(e, "cannot read it"))],
        ),
    }
}

async fn probe(addr: &str, port: u16, timeout: Duration) -> (Verdict, String) {
    let target = if addr.contains(':') {
        format!("[{addr}]:{port}")
    } else {
        format!("{addr}:{port}")
    };
    let began = Instant::now();
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(&target)).await {
        Ok(Ok(_)) => (
            Verdict::Ok,
            format!(
                "TCP connect to {target} succeeded in {:.1} ms",
                began.elapsed().as_secs_f64() * 1000.0
            ),
        ),
        Ok(Err(e)) => (
            Verdict::Failed,
            format!(
                "TCP connect to {target} failed after {:.1} ms: {e}",
                began.elapsed().as_secs_f64() * 1000.0
            ),
        ),
        Err(_) => (
            Verdict::Failed,
            format!("TCP connect to {target}: no answer in {timeout:?}"),
        ),
    }
}

pub async fn run(ctx: &Ctx, args: &DiagnoseArgs) -> anyhow::Result<u8> {
    let Some(ns) = ctx.namespace.clone() else {
        anyhow::bail!("diagnose needs one namespace: use -n, not -A");
    };
    let name = &args.name;
    let Some(cic) = super::selection::get_interconnect(ctx, &ns, name).await? else {
        anyhow::bail!(
            "CellInterconnect {ns}/{name} not found (list them with `kubectl get cellinterconnects -n {ns}`)"
        );
    };
    let mut steps = vec![];
    let generation = cic.metadata.generation.unwrap_or_default();
    steps.push(step(
        format!("CellInterconnect {ns}/{name} exists"),
        Verdict::Ok,
        vec![format!(
            "generation {generation}, local {}, remote {}",
            cic.spec.local_endpoint.name, cic.spec.remote_endpoint.name
        )],
    ));
    let eps: Api<InfraEndpoint> = Api::namespaced(ctx.client.clone(), &ns);
    let mut endpoints = vec![];
    for (which, ep_name) in [
        ("local", &cic.spec.local_endpoint.name),
        ("remote", &cic.spec.remote_endpoint.name),
    ] {
        let title = format!("{which} InfraEndpoint {ns}/{ep_name} exists");
        match eps.get_opt(ep_name).await {
            Ok(Some(ep)) => {
                let sdn = match &ep.spec.sdn {
                    Some(s) => format!(
                        "{} at {}",
                        serde_json::to_value(s.type_)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_string))
                            .unwrap_or_default(),
                        s.url
                    ),
                    None => "external (not managed by cellnet)".into(),
                };
                steps.push(step(
                    title,
                    Verdict::Ok,
                    vec![format!(
                        "cell {}, BGP {}:{}, AS {}, {sdn}",
                        ep.spec.cell, ep.spec.address, ep.spec.port, ep.spec.asn
                    )],
                ));
                endpoints.push((which, Some(ep)));
            }
            Ok(None) => {
                steps.push(step(
                    title,
                    Verdict::Failed,
                    vec![format!("InfraEndpoint {ns}/{ep_name} does not exist")],
                ));
                endpoints.push((which, None));
            }
            Err(e) => {
                steps.push(step(
                    title,
                    Verdict::Unknown,
                    vec![format!("{:#}", explain(e, "cannot read it"))],
                ));
                endpoints.push((which, None));
            }
        }
    }
    if let Some(r) = &cic.spec.bgp.password_secret_ref {
        steps.push(
            secret_step(
                ctx,
                &ns,
                &r.name,
                Some(&r.key),
                &format!("BGP password, key {}", r.key),
            )
            .await,
        );
    }
    for (which, ep) in &endpoints {
        let Some(sdn) = ep.as_ref().and_then(|e| e.spec.sdn.as_ref()) else {
            continue;
        };
        if let Some(r) = &sdn.credentials_secret_ref {
            steps.push(secret_step(ctx, &ns, &r.name, None, &format!("{which} SDN credentials")).await);
        }
        if let Some(r) = sdn.tls.as_ref().and_then(|t| t.ca_secret_ref.as_ref()) {
            steps.push(secret_step(ctx, &ns, &r.name, None, &format!("{which} SDN CA")).await);
        }
    }
    let status = cic.status.as_ref();
    let observed = status.and_then(|s| s.observed_generation);
    let title = format!("controller has observed generation {generation}");
    steps.push(match observed {
        None => step(
            title,
            Verdict::Failed,
            vec![
                "no status.observedGeneration: is cellnet-controller running, with RBAC on this namespace?"
                    .into(),
            ],
        ),
        Some(g) if g < generation => step(
            title,
            Verdict::Failed,
            vec![format!(
                "status is for generation {g}: the controller has not caught up (is it running?)"
            )],
        ),
        Some(g) => step(title, Verdict::Ok, vec![format!("status.observedGeneration {g}")]),
    });
    steps.push(if cic.spec.suspend {
        step(
            "not suspended",
            Verdict::Failed,
            vec![format!("spec.suspend is true: the controller leaves this interconnect alone (kubectl cellnet resume {name})")],
        )
    } else {
        step("not suspended", Verdict::Ok, vec![])
    });
    steps.push(if cic.spec.admin_state == AdminState::Disabled {
        let msg = cic.spec.admin_message.clone().map(|m| format!(" with message {m:?}")).unwrap_or_default();
        step(
            "administratively enabled",
            Verdict::Failed,
            vec![format!("spec.adminState is Disabled{msg}: sessions are shut down on purpose (kubectl cellnet enable {name})")],
        )
    } else {
        step("administratively enabled", Verdict::Ok, vec![])
    });
    let ready = ready_of(&cic);
    // Down the chain: both speakers reachable, then both peers configured, then both sessions.
    let mut phases: [Vec<Step>; 3] = Default::default();
    for (which, ep) in &endpoints {
        let side = status.and_then(|s| {
            if *which == "local" {
                s.local.as_ref()
            } else {
                s.remote.as_ref()
            }
        });
        match ep {
            None => phases[0].push(step(
                format!("{which} side"),
                Verdict::Unknown,
                vec!["its InfraEndpoint is missing".into()],
            )),
            Some(ep) if !ep.spec.is_managed() => phases[0].push(step(
                format!("{which} side (cell {}) is external", ep.spec.cell),
                Verdict::Ok,
                vec!["configured by its own operators; its session is seen from the other side".into()],
            )),
            Some(ep) => side_steps(which, ep, side, &ready, &mut phases),
        }
    }
    steps.extend(phases.into_iter().flatten());
    let (r_status, r_reason, r_message) = &ready;
    steps.push(step(
        "Ready condition",
        if r_status == "True" {
            Verdict::Ok
        } else {
            Verdict::Failed
        },
        vec![format!("{r_status} {r_reason}: {r_message}")],
    ));
    // Recent events: evidence only.
    let events: Api<Event> = Api::namespaced(ctx.client.clone(), &ns);
    let lp = ListParams::default().fields(&format!(
        "involvedObject.kind=CellInterconnect,involvedObject.name={name}"
    ));
    match events.list(&lp).await {
        Ok(list) => {
            let mut items = list.items;
            items.sort_by_key(|e| {
                e.last_timestamp
                    .as_ref()
                    .map(|t| t.0)
                    .or(e.event_time.as_ref().map(|t| t.0))
                    .or(e.metadata.creation_timestamp.as_ref().map(|t| t.0))
            });
            let lines: Vec<String> = items
                .iter()
                .rev()
                .take(5)
                .map(|e| {
                    let when = e
                        .last_timestamp
                        .as_ref()
                        .or(e.metadata.creation_timestamp.as_ref())
                        .map(age)
                        .unwrap_or_else(|| "?".into());
                    format!(
                        "{when} ago  {} {}: {}",
                        e.type_.clone().unwrap_or_default(),
                        e.reason.clone().unwrap_or_default(),
                        shorten(&e.message.clone().unwrap_or_default(), 160)
                    )
                })
                .collect();
            let lines = if lines.is_empty() {
                vec!["none".into()]
            } else {
                lines
            };
            steps.push(step("recent events (newest first)", Verdict::Ok, lines));
        }
        Err(e) => steps.push(step(
            "recent events",
            Verdict::Unknown,
            vec![format!("{:#}", explain(e, "cannot list events"))],
        )),
    }
    if args.probe {
        for (which, ep) in &endpoints {
            let Some(ep) = ep else { continue };
            let (verdict, evidence) = probe(&ep.spec.address, ep.spec.port, args.probe_timeout).await;
            steps.push(step(
                format!(
                    "probe: {which} BGP port {}:{} (cell {}) from here",
                    ep.spec.address, ep.spec.port, ep.spec.cell
                ),
                verdict,
                vec![evidence],
            ));
        }
    }
    print_steps(ctx, &ns, name, &steps);
    Ok(if steps.iter().all(|s| s.verdict == Verdict::Ok) {
        EXIT_OK
    } else {
        EXIT_UNHEALTHY
    })
}

fn print_steps(ctx: &Ctx, ns: &str, name: &str, steps: &[Step]) {
    let style = &ctx.style;
    println!(
        "{}",
        style.bold(&format!("Diagnosis of CellInterconnect {ns}/{name}"))
    );
    for s in steps {
        let (label, colour) = s.verdict.label();
        let padded = format!("{label:<8}");
        println!("  {} {}", style.paint(&padded, Some(colour)), s.title);
        for e in &s.evidence {
            println!("           {e}");
        }
    }
    let failed: Vec<&Step> = steps.iter().filter(|s| s.verdict != Verdict::Ok).collect();
    println!();
    match failed.first() {
        None => println!("{} every step is ok", style.paint("HEALTHY:", Some(Color::Green))),
        Some(first) => {
            let what = if first.verdict == Verdict::Failed {
                "breaks at"
            } else {
                "cannot confirm"
            };
            println!(
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
            );
        }
    }
}
