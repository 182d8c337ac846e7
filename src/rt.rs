//! The little runtime support the core needs: sleeping, spawning a
//! background task and randomness, on every target (tokio natively;
//! `setTimeout` and the JavaScript microtask queue on wasm).

use std::future::Future;
use std::time::Duration;

use crate::{Error, MaybeSend, Result};

/// Runs `task` in the background, detached: the cache's single
/// stale-while-revalidate refresh and its two-tier invalidation listener.
///
/// Natively the task goes to the tokio runtime of the calling thread
/// (`tokio::runtime::Handle::try_current`); called outside a runtime it
/// returns [`crate::ErrorKind::Unsupported`] instead of panicking, so callers can
/// run the work in the foreground. On wasm it is queued with
/// `wasm_bindgen_futures::spawn_local` and always succeeds.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let (tx, rx) = futures_channel::oneshot::channel();
/// rampart::rt::spawn(async move {
///     let _ = tx.send(42);
/// })?;
/// assert_eq!(rx.await.ok(), Some(42));
/// # Ok::<(), rampart::Error>(()) }).unwrap();
/// // Outside a runtime: a typed error, not a panic.
/// let err = rampart::rt::spawn(async {}).unwrap_err();
/// assert_eq!(err.kind(), rampart::ErrorKind::Unsupported);
/// ```
#[cfg(not(target_arch = "wasm32"))]
pub fn spawn<F>(task: F) -> Result<()>
where
    F: Future<Output = ()> + MaybeSend + 'static,
{
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            drop(handle.spawn(task));
            Ok(())
        }
        Err(e) => Err(Error::new(
            crate::ErrorKind::Unsupported,
            "no tokio runtime is running on this thread to spawn a background task",
        )
        .with_operation("spawn")
        .with_source(e)),
    }
}

/// Runs `task` in the background, detached (wasm: on the executor given
/// to [`set_spawner`], else `spawn_local`).
#[cfg(target_arch = "wasm32")]
pub fn spawn<F>(task: F) -> Result<()>
where
    F: Future<Output = ()> + MaybeSend + 'static,
{
    match SPAWNER.get() {
        Some(spawner) => spawner(Box::pin(task)),
        None => wasm_bindgen_futures::spawn_local(task),
    }
    Ok(())
}

/// A detached background task, as [`set_spawner`] receives it.
#[cfg(target_arch = "wasm32")]
pub type BackgroundTask = std::pin::Pin<Box<dyn Future<Output = ()> + 'static>>;

#[cfg(target_arch = "wasm32")]
thread_local! {
    static SPAWNER: std::cell::Cell<Option<fn(BackgroundTask)>> =
        const { std::cell::Cell::new(None) };
}

/// Sends every later [`spawn`] on wasm to `spawner` instead of
/// wasm-bindgen-futures' queue: the Node binding runs background tasks
/// (the cache's stale-while-revalidate refresh, its invalidation listener)
/// on its own executor, which polls inside its panic guard, so a panic
/// there cannot end the process. `spawner` must not poll the task before
/// it returns (callers expect `spawn_local`'s "later").
#[cfg(target_arch = "wasm32")]
pub fn set_spawner(spawner: fn(BackgroundTask)) {
    SPAWNER.set(Some(spawner));
}

/// Whether [`sleep`] can wait on this thread: natively a tokio runtime
/// must be running here (a typed [`crate::ErrorKind::Unsupported`] rather
/// than tokio's panic; its timer being enabled stays the caller's part);
/// on wasm `setTimeout` always can. The caller names the operation.
pub fn sleep_available() -> Result<()> {
    #[cfg(not(target_arch = "wasm32"))]
    if let Err(e) = tokio::runtime::Handle::try_current() {
        return Err(Error::new(
            crate::ErrorKind::Unsupported,
            "waiting needs a tokio runtime (with its timer enabled) on this thread",
        )
        .with_source(e));
    }
    Ok(())
}

/// Waits for `d` (natively on tokio's timer; on wasm through `setTimeout`).
///
/// Natively this must run inside a tokio runtime with the time driver.
#[cfg(not(target_arch = "wasm32"))]
pub async fn sleep(d: Duration) {
    tokio::time::sleep(d).await;
}

/// Waits for `d` (natively on tokio's timer; on wasm through `setTimeout`).
#[cfg(target_arch = "wasm32")]
pub async fn sleep(d: Duration) {
    use wasm_bindgen_futures::JsFuture;
    let millis = d.as_millis().min(i32::MAX as u128) as i32;
    let promise = js_sys::Promise::new(&mut |resolve, _reject| {
        let global = js_sys::global();
        let set_timeout = js_sys::Reflect::get(&global, &"setTimeout".into())
            .ok()
            .and_then(|f| {
                wasm_bindgen_futures::wasm_bindgen::JsCast::dyn_into::<js_sys::Function>(f).ok()
            });
        match set_timeout {
            Some(f) => {
                let _ = f.call2(&global, &resolve, &millis.into());
            }
            None => {
                let _ = resolve.call0(&global);
            }
        }
    });
    let _ = JsFuture::from(promise).await;
}

/// Fills `buf` from the operating system's CSPRNG (`crypto.getRandomValues`
/// on wasm).
pub fn fill_random(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf).map_err(|e| {
        Error::unavailable(format!("the system random number generator failed: {e}"))
            .with_operation("random")
    })
}

/// `N` random bytes from the OS CSPRNG.
pub fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut buf = [0u8; N];
    fill_random(&mut buf)?;
    Ok(buf)
}

/// A random `u64` from the OS CSPRNG (jitter, sampling).
pub fn random_u64() -> Result<u64> {
    Ok(u64::from_le_bytes(random_bytes::<8>()?))
}

/// Compares two secrets (tokens, token hashes) in time that depends only on
/// their lengths, never on where they first differ, so a timing attacker
/// learns nothing about a stored secret from how fast a guess is refused.
///
/// ```
/// use rampart::rt::constant_time_eq;
/// assert!(constant_time_eq(b"same secret", b"same secret"));
/// assert!(!constant_time_eq(b"same secret", b"same secreT"));
/// assert!(!constant_time_eq(b"short", b"longer"));
/// ```
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        diff |= x ^ y;
    }
    // Keeps the optimizer from turning the loop into an early exit.
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_compares_bytes() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(!constant_time_eq(b"xbc", b"abc"));
    }

    #[test]
    fn random_bytes_differ() {
        let a = random_bytes::<16>().unwrap();
        let b = random_bytes::<16>().unwrap();
        assert_ne!(a, b);
    }
}
