//! Leader election on a `coordination.k8s.io/v1` Lease, the way client-go's `leaderelection` does
//! it: optimistic concurrency on the Lease's `resourceVersion`, no clock shared between replicas.
//!
//! - A candidate takes the Lease when it does not exist, has no holder (released), or its record
//!   has not changed for `leaseDurationSeconds` as measured on the candidate's own clock.
//! - The leader renews every `lease_duration / 3` (retrying every `retry_period` after a failure)
//!   and steps down when no renewal succeeded for `renew_deadline`, which is shorter than the lease
//!   duration: it stops writing before any standby can take over.
//! - On a clean shutdown the leader clears `holderIdentity`, so a standby takes over at its next
//!   retry instead of after a whole lease duration.
//!
//! Kept hand-written after trying `kube-lease-manager` 0.13 (issue #17): it writes the Lease with
//! PATCH, which the Role does not grant (get, update: the least-privilege test never led); a standby
//! re-reads only when the Lease it saw expires (SIGTERM handover 2.4-2.9 s instead of 1.0 s, no use
//! for `--retry-period`); it has no renew deadline and does not say who holds the Lease. It would
//! save about 100 of these lines for 6 more crates and +1.3 % binary size.
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, ObjectMeta, PostParams};
use tracing::{debug, info, warn};

use crate::http::Readiness;
use crate::metrics::Metrics;

/// Settings of the election (`--leader-election-*`, `--lease-duration`, ...).
#[derive(Clone, Debug)]
pub struct LeaderConfig {
    /// Namespace of the Lease.
    pub namespace: String,
    /// Name of the Lease.
    pub name: String,
    /// This replica's identity (`holderIdentity`), unique among the candidates.
    pub identity: String,
    /// How long a standby waits on an unchanged Lease before taking it.
    pub lease_duration: Duration,
    /// How long the leader keeps going without a successful renewal before it steps down.
    pub renew_deadline: Duration,
    /// How often a standby retries, and a leader retries a failed renewal.
    pub retry_period: Duration,
}

impl LeaderConfig {
    /// Checks the timings the way client-go does (`leaseDuration > renewDeadline > retryPeriod`).
    pub fn validate(&self) -> Result<(), String> {
        if self.lease_duration <= self.renew_deadline {
            return Err(format!(
                "--lease-duration ({:?}) must be greater than --renew-deadline ({:?})",
                self.lease_duration, self.renew_deadline
            ));
        }
        if self.renew_deadline <= self.retry_period {
            return Err(format!(
                "--renew-deadline ({:?}) must be greater than --retry-period ({:?})",
                self.renew_deadline, self.retry_period
            ));
        }
        if self.lease_duration.as_secs() < 1 {
            return Err("--lease-duration must be at least 1s (the Lease counts whole seconds)".into());
        }
        Ok(())
    }

    /// Cadence of renewals while leading.
    fn renew_interval(&self) -> Duration {
        (self.lease_duration / 3).min(self.renew_deadline / 2)
    }
}

/// A default identity: the pod name when set (`POD_NAME` from the downward API), else the host
/// name, plus a suffix unique to this process so that two processes on one host differ.
pub fn default_identity() -> String {
    let base = std::env::var("POD_NAME")
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        })
        .unwrap_or_else(|| "cellnet-controller".into());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!("{base}_{:x}{:05x}", std::process::id(), nanos & 0xfffff)
}

/// What one attempt on the Lease found.
#[derive(Debug, PartialEq, Eq)]
enum Attempt {
    /// We hold it (acquired or renewed).
    Leading,
    /// Someone else holds it and it has not expired.
    Standby { holder: String },
}

/// The record of the Lease last seen, and when (on our clock) it last changed.
struct Observed {
    record: (Option<String>, Option<String>, Option<i32>),
    at: Instant,
}

/// One candidate in the election.
pub struct LeaderElector {
    api: Api<Lease>,
    config: LeaderConfig,
    observed: Option<Observed>,
    readiness: Arc<Readiness>,
    metrics: Arc<Metrics>,
}

/// Why [`LeaderElector::hold`] returned: the lease is lost and the controllers must stop.
#[derive(Debug)]
pub struct LeaseLost(pub String);

impl std::fmt::Display for LeaseLost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "leader election lost: {}", self.0)
    }
}

impl std::error::Error for LeaseLost {}

fn now() -> MicroTime {
    MicroTime(Timestamp::now())
}

impl LeaderElector {
    pub fn new(
        client: Client,
        config: LeaderConfig,
        readiness: Arc<Readiness>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            api: Api::namespaced(client, &config.namespace),
            config,
            observed: None,
            readiness,
            metrics,
        }
    }

    pub fn config(&self) -> &LeaderConfig {
        &self.config
    }

    /// Waits until this replica leads (retrying every `retry_period`). Cancel-safe: drop the
    /// future to stop campaigning (e.g. on SIGTERM while standing by).
    pub async fn acquire(&mut self) {
        let mut last_holder = None;
        loop {
            match self.try_acquire_or_renew().await {
                Ok(Attempt::Leading) => {
                    info!(lease = %self.lease_name(), identity = %self.config.identity, "acquired the lease; leading");
                    self.set_leading(true);
                    return;
                }
                Ok(Attempt::Standby { holder }) => {
                    // A standby that sees the Lease is in a correct state: ready (see README).
                    self.readiness.set_standby(true);
                    self.metrics.set_leader(&self.config.name, false);
                    if last_holder.as_ref() != Some(&holder) {
                        info!(lease = %self.lease_name(), %holder, "standing by; another replica leads");
                        last_holder = Some(holder);
                    }
                }
                Err(err) => {
                    self.readiness.set_standby(false);
                    warn!(lease = %self.lease_name(), error = %err, "cannot read or take the lease; retrying");
                }
            }
            tokio::time::sleep(self.config.retry_period).await;
        }
    }

    /// Renews the Lease while leading; returns when it is lost (not renewed for `renew_deadline`,
    /// or taken by another replica). Drop the future to stop renewing, then [`Self::release`].
    pub async fn hold(&mut self) -> LeaseLost {
        let mut last_renew = Instant::now();
        let mut pause = self.config.renew_interval();
        loop {
            tokio::time::sleep(pause).await;
            let remaining = self.config.renew_deadline.saturating_sub(last_renew.elapsed());
            let attempt = tokio::time::timeout(remaining, self.try_acquire_or_renew()).await;
            match attempt {
                Ok(Ok(Attempt::Leading)) => {
                    debug!(lease = %self.lease_name(), "renewed the lease");
                    last_renew = Instant::now();
                    pause = self.config.renew_interval();
                }
                Ok(Ok(Attempt::Standby { holder })) => {
                    self.set_leading(false);
                    return LeaseLost(format!("the lease is held by {holder}"));
                }
                Ok(Err(err)) => {
                    warn!(lease = %self.lease_name(), error = %err, "cannot renew the lease; retrying");
                    pause = self.config.retry_period;
                }
                Err(_) => {}
            }
            if last_renew.elapsed() >= self.config.renew_deadline {
                self.set_leading(false);
                return LeaseLost(format!(
                    "not renewed for {:?} (--renew-deadline)",
                    self.config.renew_deadline
                ));
            }
        }
    }

    /// Gives the lease up (clears `holderIdentity`) if this replica still holds it, so a standby
    /// takes over at its next retry. Bounded to a few seconds; failures are logged.
    pub async fn release(&mut self) {
        self.set_leading(false);
        let release = async {
            let mut lease = self.api.get(&self.config.name).await?;
            let spec = lease.spec.get_or_insert_with(Default::default);
            if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
                return Ok::<bool, kube::Error>(false);
            }
            spec.holder_identity = None;
            spec.lease_duration_seconds = Some(1);
            spec.renew_time = Some(now());
            self.api
                .replace(&self.config.name, &PostParams::default(), &lease)
                .await?;
            Ok(true)
        };
        match tokio::time::timeout(Duration::from_secs(3), release).await {
            Ok(Ok(true)) => info!(lease = %self.lease_name(), "released the lease"),
            Ok(Ok(false)) => debug!(lease = %self.lease_name(), "lease not held; nothing to release"),
            Ok(Err(err)) => warn!(lease = %self.lease_name(), error = %err, "cannot release the lease"),
            Err(_) => warn!(lease = %self.lease_name(), "releasing the lease timed out"),
        }
    }

    fn lease_name(&self) -> String {
        format!("{}/{}", self.config.namespace, self.config.name)
    }

    fn set_leading(&self, leading: bool) {
        self.readiness.set_leading(leading);
        self.metrics.set_leader(&self.config.name, leading);
    }

    fn lease_seconds(&self) -> i32 {
        self.config
            .lease_duration
            .as_secs()
            .try_into()
            .unwrap_or(i32::MAX)
    }

    /// One round of client-go's `tryAcquireOrRenew`.
    async fn try_acquire_or_renew(&mut self) -> Result<Attempt, kube::Error> {
        let me = self.config.identity.clone();
        let existing = match self.api.get_opt(&self.config.name).await? {
            Some(lease) => lease,
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.config.name.clone()),
                        namespace: Some(self.config.namespace.clone()),
                        ..Default::default()
                    },
                    spec: Some(LeaseSpec {
                        holder_identity: Some(me.clone()),
                        lease_duration_seconds: Some(self.lease_seconds()),
                        acquire_time: Some(now()),
                        renew_time: Some(now()),
                        lease_transitions: Some(0),
                        ..Default::default()
                    }),
                };
                return match self.api.create(&PostParams::default(), &lease).await {
                    Ok(_) => Ok(Attempt::Leading),
                    // Another candidate created it first.
                    Err(kube::Error::Api(s)) if s.code == 409 => Ok(Attempt::Standby {
                        holder: "another candidate".into(),
                    }),
                    Err(e) => Err(e),
                };
            }
        };
        let spec = existing.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let record = (
            holder.clone(),
            spec.renew_time.as_ref().map(|t| t.0.to_string()),
            spec.lease_transitions,
        );
        // Expiry is judged on our own clock: since when has the record been unchanged?
        match &self.observed {
            Some(o) if o.record == record => {}
            _ => {
                self.observed = Some(Observed {
                    record,
                    at: Instant::now(),
                })
            }
        }
        let observed_at = self.observed.as_ref().map(|o| o.at).unwrap_or_else(Instant::now);
        let duration = Duration::from_secs(spec.lease_duration_seconds.unwrap_or(0).max(0) as u64);
        let held_by_me = holder.as_deref() == Some(me.as_str());
        if let Some(h) = &holder
            && !held_by_me
            && observed_at.elapsed() < duration
        {
            return Ok(Attempt::Standby { holder: h.clone() });
        }

        let mut lease = existing;
        let transitions = spec.lease_transitions.unwrap_or(0);
        let new_spec = LeaseSpec {
            holder_identity: Some(me.clone()),
            lease_duration_seconds: Some(self.lease_seconds()),
            acquire_time: if held_by_me {
                spec.acquire_time.clone()
            } else {
                Some(now())
            },
            renew_time: Some(now()),
            lease_transitions: Some(if held_by_me { transitions } else { transitions + 1 }),
            ..spec
        };
        lease.spec = Some(new_spec);
        // `replace` sends metadata.resourceVersion: a concurrent writer makes it fail with 409.
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => {
                if !held_by_me {
                    info!(lease = %self.lease_name(), previous = ?holder, "took over the lease");
                }
                Ok(Attempt::Leading)
            }
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(Attempt::Standby {
                holder: holder.unwrap_or_else(|| "another candidate".into()),
            }),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(lease: u64, renew: u64, retry: u64) -> LeaderConfig {
        LeaderConfig {
            namespace: "ns".into(),
            name: "cellnet-controller".into(),
            identity: "me".into(),
            lease_duration: Duration::from_secs(lease),
            renew_deadline: Duration::from_secs(renew),
            retry_period: Duration::from_secs(retry),
        }
    }

    #[test]
    fn timings_are_validated_like_client_go() {
        assert!(config(15, 10, 2).validate().is_ok());
        assert!(
            config(10, 10, 2)
                .validate()
                .unwrap_err()
                .contains("--renew-deadline")
        );
        assert!(
            config(15, 2, 2)
                .validate()
                .unwrap_err()
                .contains("--retry-period")
        );
    }

    #[test]
    fn renewals_leave_room_for_a_failed_one() {
        assert_eq!(config(15, 10, 2).renew_interval(), Duration::from_secs(5));
        // Never slower than half the renew deadline.
        assert_eq!(config(30, 8, 2).renew_interval(), Duration::from_secs(4));
    }

    #[test]
    fn identities_differ_per_process_and_call() {
        let id = default_identity();
        assert!(id.contains('_'), "{id}");
    }
}
