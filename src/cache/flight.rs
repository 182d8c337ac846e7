//! Request coalescing: one loader call per key per process at a time.
//!
//! A *flight* is the future that runs a loader and stores its value. It is
//! shared ([`futures_util::future::Shared`]): every caller that misses the
//! same key while a flight is in the air awaits the same one, whichever of
//! them polls drives it, and all receive its output — the encoded value, or
//! the loader's error (which is never cached). The map keeps only a weak
//! handle, so when every caller has given up (dropped its future) the
//! flight is dropped too, loader included, and the next caller starts
//! afresh; a guard inside the flight removes its map entry when it
//! finishes or is dropped.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use futures_util::future::{FutureExt, Shared, WeakShared};

use crate::{Error, Key};

/// What a flight delivers to each waiter: the codec's bytes of the loaded
/// value (`None`: the loader found nothing), or the loader's error.
pub(crate) type FlightOutput = Result<Option<Bytes>, Arc<Error>>;

#[cfg(not(target_arch = "wasm32"))]
pub(crate) type FlightFuture = Pin<Box<dyn Future<Output = FlightOutput> + Send>>;
#[cfg(target_arch = "wasm32")]
pub(crate) type FlightFuture = Pin<Box<dyn Future<Output = FlightOutput>>>;

/// A flight, as each waiter holds it.
pub(crate) type Flight = Shared<FlightFuture>;

#[derive(Default)]
pub(crate) struct Flights {
    map: Mutex<HashMap<Key, (u64, WeakShared<FlightFuture>)>>,
    next_id: AtomicU64,
}

/// Removes a flight's map entry when the flight ends, however it ends.
pub(crate) struct FlightGuard {
    flights: Arc<Flights>,
    key: Key,
    id: u64,
}

impl Drop for FlightGuard {
    fn drop(&mut self) {
        let mut map = self.flights.lock();
        if map.get(&self.key).is_some_and(|(id, _)| *id == self.id) {
            map.remove(&self.key);
        }
    }
}

impl Flights {
    fn lock(&self) -> MutexGuard<'_, HashMap<Key, (u64, WeakShared<FlightFuture>)>> {
        // Nothing panics while the lock is held; a poisoned map is intact.
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The flight in the air for `key`, or a new one built by `start` (which
    /// must keep the guard alive until the flight ends). `true` when new.
    pub fn join_or_start(
        self: &Arc<Self>,
        key: &Key,
        start: impl FnOnce(FlightGuard) -> FlightFuture,
    ) -> (Flight, bool) {
        let mut map = self.lock();
        if let Some(flight) = map.get(key).and_then(|(_, weak)| weak.upgrade()) {
            return (flight, false);
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let guard = FlightGuard {
            flights: self.clone(),
            key: key.clone(),
            id,
        };
        let flight = start(guard).shared();
        if let Some(weak) = flight.downgrade() {
            map.insert(key.clone(), (id, weak));
        }
        (flight, true)
    }

    /// Whether a flight is in the air for `key`.
    #[cfg(test)]
    pub fn in_flight(&self, key: &Key) -> bool {
        self.lock()
            .get(key)
            .is_some_and(|(_, weak)| weak.upgrade().is_some())
    }
}

/// A copy of a shared error for one waiter: same kind, message, temporary
/// flag, operation and key, with the original kept as its source.
pub(crate) fn share_error(e: &Arc<Error>) -> Error {
    let mut out = Error::new(e.kind(), e.message().to_owned());
    out = if e.is_temporary() {
        out.temporary()
    } else {
        out.permanent()
    };
    if let Some(op) = e.operation() {
        out = out.with_operation(op);
    }
    if let Some(key) = e.key() {
        out = out.with_key(key);
    }
    out.with_source(SharedError(e.clone()))
}

/// The original error behind a [`share_error`] copy.
#[derive(Debug)]
struct SharedError(Arc<Error>);

impl std::fmt::Display for SharedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for SharedError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&*self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[tokio::test]
    async fn dropped_flights_leave_the_map() {
        let flights = Arc::new(Flights::default());
        let key = Key::new("k").unwrap();
        let (flight, new) = flights.join_or_start(&key, |guard| {
            Box::pin(async move {
                let _guard = guard;
                futures_util::future::pending::<()>().await;
                Ok(None)
            })
        });
        assert!(new);
        let (again, new) = flights.join_or_start(&key, |_| unreachable!("joins"));
        assert!(!new);
        assert!(flights.in_flight(&key));
        drop((flight, again));
        assert!(!flights.in_flight(&key));
        let (done, new) = flights.join_or_start(&key, |guard| {
            Box::pin(async move {
                drop(guard);
                Ok(Some(Bytes::from_static(b"1")))
            })
        });
        assert!(new);
        assert_eq!(done.await.unwrap(), Some(Bytes::from_static(b"1")));
        assert!(!flights.in_flight(&key));
    }

    #[test]
    fn shared_errors_keep_their_context() {
        let io = std::io::Error::other("db down");
        let original = Arc::new(
            Error::unavailable("loader failed")
                .with_operation("load")
                .with_key("k")
                .with_source(io),
        );
        let copy = share_error(&original);
        assert_eq!(copy.kind(), ErrorKind::Unavailable);
        assert!(copy.is_temporary());
        assert_eq!(copy.to_string(), original.to_string());
        let source = std::error::Error::source(&copy).unwrap();
        assert_eq!(source.to_string(), original.to_string());
        assert_eq!(source.source().unwrap().to_string(), "db down");
    }
}
