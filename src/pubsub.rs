//! [`Hub`]: in-process publish/subscribe for the in-process stores.

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Bytes;
use futures_channel::mpsc;

use crate::{Key, Subscription};

/// Fans messages out to the subscribers of a channel within one process.
///
/// [`crate::MemoryStore`] and `rampart-moka`'s store use it to offer
/// pub/sub; a store shared between processes (Redis) uses its own.
///
/// ```
/// use futures_util::StreamExt;
/// use rampart::{Hub, Key};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let hub = Hub::default();
/// let channel = Key::new("invalidations").unwrap();
/// let mut sub = hub.subscribe(&channel);
/// assert_eq!(hub.publish(&channel, "user:1".into()), 1);
/// assert_eq!(sub.next().await.as_deref(), Some(&b"user:1"[..]));
/// # });
/// ```
#[derive(Debug, Default)]
pub struct Hub {
    channels: Mutex<HashMap<Key, Vec<mpsc::UnboundedSender<Bytes>>>>,
}

impl Hub {
    /// Sends `message` to every live subscriber of `channel`; returns how
    /// many received it. Subscribers that went away are forgotten.
    pub fn publish(&self, channel: &Key, message: Bytes) -> usize {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        let Some(subscribers) = channels.get_mut(channel) else {
            return 0;
        };
        subscribers.retain(|s| s.unbounded_send(message.clone()).is_ok());
        let n = subscribers.len();
        if n == 0 {
            channels.remove(channel);
        }
        n
    }

    /// A stream of the messages published on `channel` from now on.
    pub fn subscribe(&self, channel: &Key) -> Subscription {
        let (tx, rx) = mpsc::unbounded();
        self.channels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(channel.clone())
            .or_default()
            .push(tx);
        Box::pin(rx)
    }
}
