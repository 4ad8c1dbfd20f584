//! Per-object retry delays: exponential with jitter, capped, reset on success.
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use backon::{BackoffBuilder as _, ExponentialBuilder};

/// Failure counts per object key (`namespace/name`), so one failing object backs off alone.
#[derive(Default)]
pub struct Backoffs {
    attempts: Mutex<HashMap<String, u32>>,
    min: Duration,
    max: Duration,
}

impl Backoffs {
    pub fn new(min: Duration, max: Duration) -> Self {
        Self {
            attempts: Mutex::default(),
            min,
            max,
        }
    }

    /// Records a failure of `key` and returns how long to wait before the next attempt.
    pub fn next_delay(&self, key: &str) -> Duration {
        let attempt = {
            let mut attempts = self.attempts.lock().expect("backoff lock");
            let n = attempts.entry(key.to_string()).or_default();
            *n = n.saturating_add(1);
            *n
        };
        ExponentialBuilder::default()
            .with_min_delay(self.min)
            .with_max_delay(self.max)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times()
            .build()
            .nth(attempt.saturating_sub(1).min(32) as usize)
            .unwrap_or(self.max)
            .min(self.max)
    }

    /// Forgets the failures of `key` after a success.
    pub fn reset(&self, key: &str) {
        self.attempts.lock().expect("backoff lock").remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_then_caps_and_resets() {
        let b = Backoffs::new(Duration::from_secs(1), Duration::from_secs(60));
        let first = b.next_delay("ns/a");
        assert!(
            first >= Duration::from_secs(1) && first <= Duration::from_secs(2),
            "{first:?}"
        );
        let mut last = first;
        for _ in 0..12 {
            last = b.next_delay("ns/a");
        }
        assert!(last <= Duration::from_secs(60), "capped: {last:?}");
        assert!(last >= Duration::from_secs(30), "grew: {last:?}");
        // Another object is not slowed by ns/a's failures.
        assert!(b.next_delay("ns/b") <= Duration::from_secs(2));
        b.reset("ns/a");
        assert!(b.next_delay("ns/a") <= Duration::from_secs(2));
    }
}
