//! What `/healthz` means: the process is making progress, so that kubelet restarts one that is
//! wedged rather than one that is merely busy or idle.
//!
//! Two watchdogs:
//! - **reconciles**: every reconcile registers while it runs; one running longer than
//!   `--liveness-stall-after` is stuck (each SDN, Neutron and Kubernetes call has its own
//!   timeout, so a healthy reconcile ends within a minute or two), and it holds one of the
//!   `--concurrency` slots for good.
//! - **the runtime**: a task beats once a second; no beat for that long means the async runtime
//!   no longer runs tasks (workers blocked), which the reconcile watchdog cannot see when no
//!   reconcile is running.
//!
//! Idle is alive: no objects, or a standby replica, run no reconciles and stay healthy.
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How often the runtime heartbeat beats.
const BEAT: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub struct Liveness {
    stall_after: Duration,
    started: Instant,
    /// Milliseconds since `started` of the last runtime beat.
    last_beat_ms: AtomicU64,
    next_id: AtomicU64,
    running: Mutex<HashMap<u64, (String, Instant)>>,
}

impl Default for Liveness {
    fn default() -> Self {
        Self::new(Duration::from_secs(300))
    }
}

impl Liveness {
    pub fn new(stall_after: Duration) -> Self {
        Self {
            stall_after,
            started: Instant::now(),
            last_beat_ms: AtomicU64::new(0),
            next_id: AtomicU64::new(0),
            running: Mutex::default(),
        }
    }

    /// Registers a running reconcile of `what` (kind/namespace/name) until the guard drops.
    pub fn reconciling(&self, what: String) -> Running<'_> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.running
            .lock()
            .expect("liveness lock")
            .insert(id, (what, Instant::now()));
        Running { liveness: self, id }
    }

    /// Beats once a second while the runtime runs tasks (spawned by the probe server).
    pub async fn heartbeat(self: std::sync::Arc<Self>) {
        loop {
            self.beat(Instant::now());
            tokio::time::sleep(BEAT).await;
        }
    }

    fn beat(&self, now: Instant) {
        let ms = now.saturating_duration_since(self.started).as_millis() as u64;
        self.last_beat_ms.store(ms, Ordering::Relaxed);
    }

    /// `Ok` while alive, `Err(why)` when a watchdog fired.
    pub fn check(&self, now: Instant) -> Result<(), String> {
        let beat = self.started + Duration::from_millis(self.last_beat_ms.load(Ordering::Relaxed));
        let silent = now.saturating_duration_since(beat);
        if silent > self.stall_after.max(BEAT * 5) {
            return Err(format!(
                "the runtime has not run its heartbeat for {} s",
                silent.as_secs()
            ));
        }
        let running = self.running.lock().expect("liveness lock");
        let oldest = running
            .values()
            .max_by_key(|(_, since)| now.saturating_duration_since(*since));
        match oldest {
            Some((what, since)) if now.saturating_duration_since(*since) > self.stall_after => Err(format!(
                "the reconcile of {what} has run for {} s (more than --liveness-stall-after {} s); \
                 {} reconcile(s) running",
                now.saturating_duration_since(*since).as_secs(),
                self.stall_after.as_secs(),
                running.len()
            )),
            _ => Ok(()),
        }
    }
}

/// A running reconcile; unregisters on drop (also when its future is dropped).
pub struct Running<'a> {
    liveness: &'a Liveness,
    id: u64,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if let Ok(mut running) = self.liveness.running.lock() {
            running.remove(&self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reconcile_running_too_long_fails_liveness_until_it_ends() {
        let l = Liveness::new(Duration::from_secs(60));
        let t0 = Instant::now();
        l.beat(t0);
        assert!(l.check(t0).is_ok(), "idle is alive");
        let stuck = l.reconciling("CellInterconnect/ns/a".into());
        let later = t0 + Duration::from_secs(61);
        l.beat(later);
        let why = l.check(later).unwrap_err();
        assert!(
            why.contains("CellInterconnect/ns/a") && why.contains("has run for"),
            "{why}"
        );
        drop(stuck);
        assert!(l.check(later).is_ok());
    }

    #[test]
    fn a_silent_runtime_fails_liveness() {
        let l = Liveness::new(Duration::from_secs(10));
        let t0 = Instant::now();
        l.beat(t0);
        assert!(l.check(t0 + Duration::from_secs(9)).is_ok());
        let why = l.check(t0 + Duration::from_secs(12)).unwrap_err();
        assert!(why.contains("heartbeat"), "{why}");
    }
}
