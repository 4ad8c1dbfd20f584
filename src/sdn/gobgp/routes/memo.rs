//! What one client remembers between reconciles so that a steady one reads little of its
//! speaker: which networks each origination may hold there, and which filters were left with no
//! set outside what their statements use. Forgotten with the client (a new controller process,
//! a changed target), and ignored after [`FULL_READ_EVERY`]: then everything is read again.
//!
//! Sound because cellnet is the only writer of its own marks and names: a gobgpd restart only
//! removes things, which the narrow reads still see missing.
use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ipnet::IpNet;

/// How long narrow reads are trusted before a full read of the speaker.
pub const FULL_READ_EVERY: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, Default)]
pub struct RoutesMemo {
    originations: Mutex<HashMap<u32, Held>>,
    /// Filter keys whose sets are exactly those their wanted state and statements name, with
    /// the time of their last full read.
    clean_filters: Mutex<HashMap<String, Instant>>,
}

#[derive(Debug)]
struct Held {
    /// Every network cellnet may have originated with this mark since `scanned`.
    nets: BTreeSet<IpNet>,
    /// The last read of the whole Loc-RIB for this mark.
    scanned: Instant,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl RoutesMemo {
    /// The networks the speaker may hold for `mark`, if known from a recent full read: looking
    /// these and the wanted ones up is as good as reading the whole table.
    pub fn may_hold(&self, mark: u32) -> Option<BTreeSet<IpNet>> {
        let held = lock(&self.originations);
        let held = held.get(&mark)?;
        (held.scanned.elapsed() < FULL_READ_EVERY).then(|| held.nets.clone())
    }

    /// About to write `nets` for `mark`: they count as held until a success says otherwise
    /// (a write that failed half-way may have left them).
    pub fn writing(&self, mark: u32, nets: &BTreeSet<IpNet>) {
        if let Some(held) = lock(&self.originations).get_mut(&mark) {
            held.nets.extend(nets.iter().copied());
        }
    }

    /// The speaker now holds exactly `nets` for `mark`; `full`: as found by a whole-table read.
    pub fn holds(&self, mark: u32, nets: BTreeSet<IpNet>, full: bool) {
        let mut held = lock(&self.originations);
        match held.get_mut(&mark) {
            Some(h) if !full => h.nets = nets,
            _ if full => {
                let scanned = Instant::now();
                held.insert(mark, Held { nets, scanned });
            }
            _ => {}
        }
    }

    pub fn forget_origination(&self, mark: u32) {
        lock(&self.originations).remove(&mark);
    }

    /// When the sets of filter `key` were last all read, if it was left clean since then and
    /// recently enough: then only the sets it names need reading.
    pub fn filter_clean_since(&self, key: &str) -> Option<Instant> {
        let clean = lock(&self.clean_filters);
        clean
            .get(key)
            .copied()
            .filter(|read| read.elapsed() < FULL_READ_EVERY)
    }

    /// The filter `key` is about to be written: clean no more until the writes succeed.
    pub fn filter_writing(&self, key: &str) {
        lock(&self.clean_filters).remove(key);
    }

    /// The filter `key` is clean; `full_read`: when its sets were last all read.
    pub fn filter_done(&self, key: &str, full_read: Instant) {
        lock(&self.clean_filters).insert(key.to_owned(), full_read);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> BTreeSet<IpNet> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn an_origination_is_known_only_after_a_full_read() {
        let memo = RoutesMemo::default();
        assert_eq!(memo.may_hold(7), None);
        memo.holds(7, nets(&["192.0.2.0/25"]), false);
        assert_eq!(memo.may_hold(7), None, "a narrow read proves nothing");
        memo.holds(7, nets(&["192.0.2.0/25"]), true);
        assert_eq!(memo.may_hold(7), Some(nets(&["192.0.2.0/25"])));
        // A write that fails half-way leaves both candidates; a success, only what is held.
        memo.writing(7, &nets(&["192.0.2.128/25"]));
        assert_eq!(memo.may_hold(7), Some(nets(&["192.0.2.0/25", "192.0.2.128/25"])));
        memo.holds(7, nets(&["192.0.2.128/25"]), false);
        assert_eq!(memo.may_hold(7), Some(nets(&["192.0.2.128/25"])));
        memo.forget_origination(7);
        assert_eq!(memo.may_hold(7), None);
    }

    #[test]
    fn a_filter_is_clean_between_writes() {
        let memo = RoutesMemo::default();
        assert_eq!(memo.filter_clean_since("ab"), None);
        let read = Instant::now();
        memo.filter_done("ab", read);
        assert_eq!(memo.filter_clean_since("ab"), Some(read));
        memo.filter_writing("ab");
        assert_eq!(memo.filter_clean_since("ab"), None);
        memo.filter_done("ab", read - FULL_READ_EVERY);
        assert_eq!(
            memo.filter_clean_since("ab"),
            None,
            "too old: read everything again"
        );
    }
}
