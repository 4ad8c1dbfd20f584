//! One watch, several readers: the events of one stream handed to each subscriber in turn, so the
//! API server sends each change of a kind once to cellnet, not once per controller that cares.
//!
//! kube-runtime's shared streams (`reflector::store_shared`, `Controller::for_shared_stream`) were
//! the other way: their subscribers see neither deletions nor the version of an object an event
//! carried (they look the object up in the store when they read). The endpoint controller must see
//! an interconnect go (it releases its in-use finalizer then), and [`super::changes::OwnWrites`]
//! recognises our own writes by the resourceVersion of the event. Here every subscriber gets every
//! event as it came, and filters it its own way.
//!
//! Every buffer is bounded: a subscriber that does not keep up holds the watch back (the API
//! server keeps the events) instead of a queue growing. Subscribers must therefore be polled; a
//! dropped one is forgotten at the next event.
use futures::{Stream, StreamExt as _};
use tokio::sync::mpsc::{Sender, channel};
use tokio::sync::watch;
use tokio_stream::wrappers::ReceiverStream;

/// Whether a watch has listed its objects once. Any number of tasks may wait for it (kube's
/// `Store::wait_until_ready` wakes only the last of several tasks waiting at once: a reconcile
/// waiting on it beside the controller's own wait never woke).
#[derive(Clone)]
pub struct Listed(watch::Receiver<bool>);

impl Listed {
    /// The flag and what sets it.
    pub fn new() -> (watch::Sender<bool>, Self) {
        let (tx, rx) = watch::channel(false);
        (tx, Self(rx))
    }

    /// Resolves once the watch has listed its objects (or is gone).
    pub async fn wait(&self) {
        let _ = self.0.clone().wait_for(|listed| *listed).await;
    }
}

/// One source stream and the subscribers each of its items is sent to.
pub struct Fanout<T> {
    source: std::pin::Pin<Box<dyn Stream<Item = T> + Send>>,
    subscribers: Vec<Sender<T>>,
    buffer: usize,
}

impl<T: Clone + Send + 'static> Fanout<T> {
    /// Items of `source`, each subscriber holding at most `buffer` not yet read.
    pub fn new(source: impl Stream<Item = T> + Send + 'static, buffer: usize) -> Self {
        Self {
            source: source.boxed(),
            subscribers: Vec::new(),
            buffer,
        }
    }

    /// Every item of the source from now on (subscribe before [`Fanout::run`]).
    pub fn subscribe(&mut self) -> ReceiverStream<T> {
        let (tx, rx) = channel(self.buffer);
        self.subscribers.push(tx);
        ReceiverStream::new(rx)
    }

    /// Drives the source until it ends or every subscriber is gone.
    pub async fn run(self) {
        let Self {
            mut source,
            mut subscribers,
            ..
        } = self;
        while let Some(item) = source.next().await {
            subscribers = send_to_all(subscribers, item).await;
            if subscribers.is_empty() {
                return;
            }
        }
    }
}

/// Sends `item` to each subscriber (a clone to all but the last); returns those still listening.
async fn send_to_all<T: Clone>(subscribers: Vec<Sender<T>>, item: T) -> Vec<Sender<T>> {
    let mut open = Vec::with_capacity(subscribers.len());
    let last = subscribers.len().saturating_sub(1);
    let mut item = Some(item);
    for (i, tx) in subscribers.into_iter().enumerate() {
        let this = if i == last { item.take() } else { item.clone() };
        if let Some(this) = this
            && tx.send(this).await.is_ok()
        {
            open.push(tx);
        }
    }
    open
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_task_waiting_for_the_list_wakes() {
        let (tx, listed) = Listed::new();
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let listed = listed.clone();
                tokio::spawn(async move { listed.wait().await })
            })
            .collect();
        tokio::task::yield_now().await;
        tx.send_replace(true);
        for w in waiters {
            tokio::time::timeout(std::time::Duration::from_secs(5), w)
                .await
                .expect("a waiter was not woken")
                .unwrap();
        }
    }

    #[tokio::test]
    async fn every_subscriber_sees_every_item_in_order() {
        let mut fanout = Fanout::new(futures::stream::iter(1..=5), 2);
        let (a, b) = (fanout.subscribe(), fanout.subscribe());
        let run = tokio::spawn(fanout.run());
        let (a, b) = futures::join!(a.collect::<Vec<_>>(), b.collect::<Vec<_>>());
        run.await.unwrap();
        assert_eq!(a, [1, 2, 3, 4, 5]);
        assert_eq!(b, [1, 2, 3, 4, 5]);
    }

    #[tokio::test]
    async fn a_dropped_subscriber_does_not_hold_the_others_back() {
        let mut fanout = Fanout::new(futures::stream::iter(1..=100), 1);
        let gone = fanout.subscribe();
        let kept = fanout.subscribe();
        drop(gone);
        let run = tokio::spawn(fanout.run());
        assert_eq!(kept.collect::<Vec<_>>().await.len(), 100);
        run.await.unwrap();
    }

    #[tokio::test]
    async fn the_source_waits_for_a_slow_subscriber_within_its_buffer() {
        let mut fanout = Fanout::new(futures::stream::iter(1..=10), 2);
        let mut slow = fanout.subscribe();
        let run = tokio::spawn(fanout.run());
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!run.is_finished(), "the source ran ahead of a full buffer");
        assert_eq!(slow.next().await, Some(1));
        assert_eq!(slow.collect::<Vec<_>>().await.len(), 9);
        run.await.unwrap();
    }
}
