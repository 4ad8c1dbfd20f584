//! Whether calls to one speaker (one client: URL, credentials, CA) may go out at all.
//!
//! - **Refused credentials back off** to minutes ([`AuthBackoff`]): a real OpenDaylight (AAA) or
//!   Keystone may lock an account after a few failed logins, and every interconnect and the poll
//!   retried each 10-30 s. After a refusal only one call (reconcile or poll) tries again when
//!   the wait is over; the others get the same error without a call. New credentials are a new
//!   client, so fixing the Secret is tried at once.
//! - **A circuit breaker** for unreachable speakers: once a call or the poll found the API
//!   unreachable, reconciles get that error without a call until the watcher's poll reaches it
//!   again. 500 interconnects against a black-holed address each waited the full SDN timeout
//!   and held every reconcile slot.
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::sdn::SdnError;

/// Why a call was not made, appended to the error that status shows (stable text: status is
/// written only when it changes).
const NOT_RETRIED: &str = "not retried until the backoff of refused credentials (--auth-failure-backoff) is over, or the Secret changes";
const BREAKER_OPEN: &str = "not called while the speaker's watcher finds it unreachable";

/// Growing waits after refused credentials: `base`, doubling, at most [`AUTH_BACKOFF_CAP`] times
/// `base`. `E` is the refusal handed to the callers held back (an SDN error, a Neutron problem).
#[derive(Debug)]
pub struct AuthBackoff<E = SdnError> {
    base: Duration,
    state: Mutex<AuthState<E>>,
}

/// The cap of [`AuthBackoff`], in multiples of its base (2 min -> at most 16 min).
pub const AUTH_BACKOFF_CAP: u32 = 8;

#[derive(Debug)]
struct AuthState<E> {
    /// Refusals since the last accepted call.
    refusals: u32,
    /// No call before this instant (also reserved for the one call that tries again), and the
    /// last refusal, returned to the callers held back.
    blocked: Option<(Instant, E)>,
}

impl<E> Default for AuthState<E> {
    fn default() -> Self {
        Self {
            refusals: 0,
            blocked: None,
        }
    }
}

impl<E: Clone> AuthBackoff<E> {
    pub fn new(base: Duration) -> Self {
        Self {
            base,
            state: Mutex::default(),
        }
    }

    /// The wait after the `n`th refusal in a row (n >= 1).
    pub fn delay(base: Duration, n: u32) -> Duration {
        let factor = 1u32 << n.saturating_sub(1).min(AUTH_BACKOFF_CAP.ilog2());
        base.saturating_mul(factor.min(AUTH_BACKOFF_CAP))
    }

    /// `Err(last refusal)` while held back. When the wait is over, this caller is the one that
    /// tries again: the others stay held back until its answer.
    pub fn admit(&self, now: Instant) -> Result<(), E> {
        let mut s = self.state.lock().expect("auth backoff lock");
        let refusals = s.refusals;
        if let Some((until, last)) = s.blocked.as_mut() {
            if now < *until {
                return Err(last.clone());
            }
            // Reserved for this caller; its answer (refused or not) decides what comes next.
            *until = now + Self::delay(self.base, refusals);
        }
        Ok(())
    }

    /// How long until a call may try again (zero when it may now).
    pub fn wait(&self, now: Instant) -> Duration {
        let s = self.state.lock().expect("auth backoff lock");
        s.blocked
            .as_ref()
            .map_or(Duration::ZERO, |(until, _)| until.saturating_duration_since(now))
    }

    /// A call was refused: the wait grows.
    pub fn refused(&self, refusal: E, now: Instant) {
        let mut s = self.state.lock().expect("auth backoff lock");
        s.refusals = s.refusals.saturating_add(1);
        s.blocked = Some((now + Self::delay(self.base, s.refusals), refusal));
    }

    /// A call passed authentication: no more waiting.
    pub fn accepted(&self) {
        *self.state.lock().expect("auth backoff lock") = AuthState::default();
    }
}

impl AuthBackoff<SdnError> {
    /// Takes in the answer of an SDN call that was made.
    pub fn observe(&self, result: Result<(), &SdnError>, now: Instant) {
        match result {
            Err(e @ SdnError::AuthFailed { .. }) => self.refused(e.clone(), now),
            // Any answer but a refusal means the credentials passed (or were not the question).
            Ok(()) => self.accepted(),
            Err(_) => {}
        }
    }
}

/// The circuit breaker: open while the speaker is unreachable.
#[derive(Debug, Default)]
pub struct Breaker {
    open: Mutex<Option<SdnError>>,
}

impl Breaker {
    pub fn admit(&self) -> Result<(), SdnError> {
        match &*self.open.lock().expect("breaker lock") {
            Some(e) => Err(held_back(Some(e), BREAKER_OPEN)),
            None => Ok(()),
        }
    }

    /// Opens on an unreachable or silent API.
    pub fn observe(&self, result: Result<(), &SdnError>) {
        if let Err(e @ (SdnError::Unreachable { .. } | SdnError::Timeout { .. })) = result {
            *self.open.lock().expect("breaker lock") = Some(e.clone());
        }
    }

    /// Closes after the watcher reached the speaker; `true` when it was open.
    pub fn close(&self) -> bool {
        self.open.lock().expect("breaker lock").take().is_some()
    }

    pub fn is_open(&self) -> bool {
        self.open.lock().expect("breaker lock").is_some()
    }
}

/// Both gates of one speaker client.
#[derive(Debug)]
pub struct Health {
    pub auth: AuthBackoff,
    pub breaker: Breaker,
}

impl Health {
    pub fn new(auth_backoff: Duration) -> Self {
        Self {
            auth: AuthBackoff::new(auth_backoff),
            breaker: Breaker::default(),
        }
    }

    /// A reconcile's call: made only when neither gate holds it back.
    pub async fn call<T>(&self, call: impl Future<Output = Result<T, SdnError>>) -> Result<T, SdnError> {
        self.breaker.admit()?;
        self.admit_poll()?;
        let result = call.await;
        self.observe(result.as_ref().map(|_| ()));
        result
    }

    /// The watcher's poll: held back only by refused credentials (it is what closes the breaker).
    pub fn admit_poll(&self) -> Result<(), SdnError> {
        self.auth
            .admit(Instant::now())
            .map_err(|last| held_back(Some(&last), NOT_RETRIED))
    }

    /// Takes in the answer of any call (reconcile or poll).
    pub fn observe(&self, result: Result<(), &SdnError>) {
        self.auth.observe(result, Instant::now());
        self.breaker.observe(result);
    }
}

/// The error that held a call back, with why no call was made.
fn held_back(last: Option<&SdnError>, why: &str) -> SdnError {
    let note = |m: &str| format!("{m} ({why})");
    match last {
        Some(SdnError::AuthFailed { endpoint, message }) => SdnError::AuthFailed {
            endpoint: endpoint.clone(),
            message: note(message),
        },
        Some(SdnError::Unreachable { endpoint, message }) => SdnError::Unreachable {
            endpoint: endpoint.clone(),
            message: note(message),
        },
        Some(SdnError::Timeout { endpoint, seconds }) => SdnError::Unreachable {
            endpoint: endpoint.clone(),
            message: note(&format!("did not answer within {seconds} s")),
        },
        Some(other) => other.clone(),
        None => SdnError::Unreachable {
            endpoint: String::new(),
            message: why.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused() -> SdnError {
        SdnError::AuthFailed {
            endpoint: "http://odl:8181".into(),
            message: "401 Unauthorized".into(),
        }
    }

    #[test]
    fn refusals_wait_longer_each_time_up_to_the_cap() {
        let base = Duration::from_secs(60);
        let waits: Vec<u64> = (1..=6)
            .map(|n| AuthBackoff::<SdnError>::delay(base, n).as_secs())
            .collect();
        assert_eq!(waits, [60, 120, 240, 480, 480, 480]);
    }

    #[test]
    fn after_a_refusal_only_one_call_tries_again_when_the_wait_is_over() {
        let b = AuthBackoff::new(Duration::from_secs(60));
        let t0 = Instant::now();
        assert!(b.admit(t0).is_ok());
        b.observe(Err(&refused()), t0);
        let held = b.admit(t0 + Duration::from_secs(59)).unwrap_err();
        assert!(matches!(held, SdnError::AuthFailed { .. }));
        let later = t0 + Duration::from_secs(61);
        assert!(b.admit(later).is_ok(), "the one that tries again");
        assert!(b.admit(later).is_err(), "the others wait for its answer");
        b.observe(Err(&refused()), later);
        assert_eq!(b.wait(later), Duration::from_secs(120));
        b.observe(Ok(()), later);
        assert!(b.admit(later).is_ok(), "accepted: no more waiting");
    }

    #[test]
    fn a_held_back_call_says_why_no_call_was_made() {
        let h = Health::new(Duration::from_secs(60));
        h.observe(Err(&refused()));
        let held = h.admit_poll().unwrap_err().to_string();
        assert!(
            held.contains("401 Unauthorized") && held.contains("--auth-failure-backoff"),
            "{held}"
        );
    }

    #[test]
    fn other_errors_leave_the_auth_backoff_alone() {
        let b = AuthBackoff::new(Duration::from_secs(60));
        let t0 = Instant::now();
        b.observe(Err(&refused()), t0);
        let timeout = SdnError::Timeout {
            endpoint: "x".into(),
            seconds: 5,
        };
        b.observe(Err(&timeout), t0);
        assert!(b.admit(t0).is_err());
    }

    #[test]
    fn the_breaker_opens_on_unreachable_and_only_the_watcher_closes_it() {
        let h = Health::new(Duration::from_secs(60));
        let timeout = SdnError::Timeout {
            endpoint: "http://void:50051".into(),
            seconds: 5,
        };
        h.observe(Err(&timeout));
        let held = h.breaker.admit().unwrap_err();
        assert_eq!(held.category(), crate::api::Reason::SdnUnreachable);
        assert!(held.to_string().contains("http://void:50051"), "{held}");
        // The words of the call that failed stay (docs/failure-modes.md, tests/faults_network.rs).
        assert!(held.to_string().contains("did not answer within 5 s"), "{held}");
        h.observe(Ok(()));
        assert!(h.breaker.is_open(), "a reconcile's success does not close it");
        assert!(h.breaker.close());
        assert!(h.breaker.admit().is_ok());
        assert!(!h.breaker.close());
    }

    #[test]
    fn a_rejected_request_does_not_open_the_breaker() {
        let h = Health::new(Duration::from_secs(60));
        let rejected = SdnError::Rejected {
            endpoint: "x".into(),
            operation: "ensure_peer",
            message: "400".into(),
        };
        h.observe(Err(&rejected));
        assert!(h.breaker.admit().is_ok());
    }
}
