//! The gRPC calls one client (and its clones) made, by operation, and the RIB destinations they
//! listed: what a reconcile costs a speaker, read by the tests and the bench.
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Calls made so far, by GoBGP operation name (`ListPath`, `AddPath`...).
#[derive(Debug, Default)]
pub struct CallCounter(Mutex<CallCounts>);

impl CallCounter {
    fn with(&self, f: impl FnOnce(&mut CallCounts)) {
        f(&mut self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
    }

    pub(super) fn add(&self, operation: &'static str) {
        self.with(|c| *c.calls.entry(operation).or_default() += 1);
    }

    pub(super) fn listed(&self, destinations: usize) {
        self.with(|c| c.destinations += destinations as u64);
    }

    /// The counts so far.
    pub fn snapshot(&self) -> CallCounts {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

/// A snapshot of a [`CallCounter`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallCounts {
    /// Calls by operation.
    pub calls: BTreeMap<&'static str, u64>,
    /// Destinations (prefixes) that `ListPath` calls streamed back.
    pub destinations: u64,
}

impl CallCounts {
    /// What was done since `before` (operations with no call left out).
    pub fn since(&self, before: &CallCounts) -> CallCounts {
        let calls = self
            .calls
            .iter()
            .map(|(op, n)| (*op, n - before.calls.get(op).copied().unwrap_or(0)))
            .filter(|(_, n)| *n > 0)
            .collect();
        CallCounts {
            calls,
            destinations: self.destinations - before.destinations,
        }
    }

    pub fn total(&self) -> u64 {
        self.calls.values().sum()
    }

    /// Calls that change the speaker: anything but `List*`, `Get*` and `WatchEvent`.
    pub fn writes(&self) -> u64 {
        let read = |op: &str| op.starts_with("List") || op.starts_with("Get") || op == "WatchEvent";
        self.calls
            .iter()
            .filter(|(op, _)| !read(op))
            .map(|(_, n)| n)
            .sum()
    }
}

impl std::fmt::Display for CallCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.calls.iter().map(|(op, n)| format!("{op} {n}")).collect();
        write!(
            f,
            "{} calls ({}), {} destinations listed",
            self.total(),
            parts.join(", "),
            self.destinations
        )
    }
}
