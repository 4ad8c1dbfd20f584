//! Step 3 (SDN I/O): the speaker's global config, through the step shared with interconnects
//! ([`speaker_setup`]): started on a bare speaker, never overwritten. The endpoint always asks
//! the speaker (its periodic check is what notices a speaker restarted bare).
use super::super::Context;
use super::super::error::Result;
use super::super::problem::Problem;
use super::super::speaker_setup::{self, Ask};
use super::super::target::{self, Checked};
use super::super::transport;
use super::report::Verdict;
use crate::api::{InfraEndpoint, Reason};
use crate::sdn::{SdnTarget, SpeakerConfig, SpeakerOutcome};

/// What the speaker step found.
#[derive(Clone, Debug, PartialEq)]
pub struct SpeakerFacts {
    pub verdict: Verdict,
    /// Whether the SDN API answered (`None`: an external endpoint, nothing to ask).
    pub reachable: Option<bool>,
    /// The note of a `SpeakerStarted` Event.
    pub started: Option<String>,
    /// Why the API calls expose credentials (`InsecureTransport`), when they do.
    pub insecure: Option<String>,
}

/// The speaker as it runs.
struct Running {
    message: String,
    started: Option<String>,
}

/// Ensures the speaker's global config of a managed endpoint; an external one is ready as is.
pub async fn speaker(ctx: &Context, ep: &InfraEndpoint) -> Result<SpeakerFacts> {
    let cell = &ep.spec.cell;
    if !ep.spec.is_managed() {
        let message = format!("external endpoint of cell {cell}: cellnet does not configure it");
        return Ok(SpeakerFacts {
            verdict: Verdict::Ready {
                reason: Reason::External,
                message,
            },
            reachable: None,
            started: None,
            insecure: None,
        });
    }
    let (ensured, insecure) = ensure(ctx, ep).await?;
    Ok(match ensured {
        Ok(running) => SpeakerFacts {
            verdict: Verdict::Ready {
                reason: Reason::SpeakerConfigured,
                message: format!("cell {cell}: {}", running.message),
            },
            reachable: Some(true),
            started: running.started.map(|note| format!("cell {cell}: {note}")),
            insecure,
        },
        Err(p) => SpeakerFacts {
            // Refused credentials are an answer; an unreachable API or a failed TLS handshake not.
            reachable: Some(!matches!(p.reason, Reason::SdnUnreachable | Reason::SdnTlsFailed)),
            verdict: Verdict::NotReady(p.within(format!("cell {cell}"))),
            started: None,
            insecure,
        },
    })
}

/// The target and config from the endpoint (Secrets read), then the speaker itself; with the
/// transport's risk once the target is known.
async fn ensure(ctx: &Context, ep: &InfraEndpoint) -> Result<(Checked<Running>, Option<String>)> {
    let target = match target::resolve_target(ctx, ep).await? {
        Ok(t) => t,
        Err(p) => return Ok((Err(p), None)),
    };
    let insecure = transport::sdn_risk(&target);
    let config = match target::speaker_config(ep) {
        Ok(c) => c,
        Err(p) => return Ok((Err(p), insecure)),
    };
    Ok((start(ctx, &target, &config).await, insecure))
}

async fn start(ctx: &Context, target: &SdnTarget, config: &SpeakerConfig) -> Checked<Running> {
    let speaker = speaker_setup::connect(ctx, target)?;
    let url = &target.url;
    match speaker_setup::ensure(ctx, target, &speaker, config, Ask::Always).await? {
        SpeakerOutcome::Conflict { reason } => Err(Problem::new(
            Reason::SpeakerConflict,
            format!("speaker {url} runs with another global config ({reason}); nothing changed"),
        )),
        outcome => Ok(Running {
            message: format!("speaker {url} runs AS {}", config.asn),
            started: (outcome == SpeakerOutcome::Started).then(|| {
                format!(
                    "started BGP on speaker {url} (AS {}, router id {}, {}:{})",
                    config.asn, config.router_id, config.listen_address, config.listen_port
                )
            }),
        }),
    }
}
