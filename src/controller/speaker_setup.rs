//! Apply step shared by both reconcilers: the speaker's global BGP config (AS, router id,
//! listen address) in place. cellnet starts a bare speaker and never overwrites a running one.
use std::sync::Arc;

use super::Context;
use super::speakers::{SpeakerKey, speaker_key};
use crate::sdn::{SdnBackend, SdnError, SdnTarget, SpeakerConfig, SpeakerOutcome};

/// Whether the registry's memory of a started speaker may stand in for asking it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ask {
    /// Skip the call when the speaker is known to run with this config (interconnects: one
    /// GetBgp per side per reconcile was a third of all SDN calls during a bulk apply).
    IfUnknown,
    /// Always ask (endpoints: their periodic check is what notices a speaker restarted bare).
    Always,
}

/// A connected speaker: its registry key and backend client.
pub struct Speaker {
    pub key: SpeakerKey,
    pub backend: Arc<dyn SdnBackend>,
}

/// The backend client for `target` from the registry (connecting on first use).
pub fn connect(ctx: &Context, target: &SdnTarget) -> Result<Speaker, SdnError> {
    Ok(Speaker {
        key: speaker_key(target.kind, &target.url),
        backend: ctx.speakers.backend(target)?,
    })
}

/// Ensures the speaker runs with `config`; remembers it in the registry when it does.
pub async fn ensure(
    ctx: &Context,
    target: &SdnTarget,
    speaker: &Speaker,
    config: &SpeakerConfig,
    ask: Ask,
) -> Result<SpeakerOutcome, SdnError> {
    if ask == Ask::IfUnknown && ctx.speakers.known_started(&speaker.key, config) {
        return Ok(SpeakerOutcome::Unchanged);
    }
    let outcome = {
        let _timer = ctx.metrics.sdn_timer(target, "ensure_speaker");
        speaker.backend.ensure_speaker(config).await?
    };
    if !matches!(outcome, SpeakerOutcome::Conflict { .. }) {
        ctx.speakers.mark_started(&speaker.key, config);
    }
    Ok(outcome)
}
