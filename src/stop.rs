//! Clean stops: SIGINT and SIGTERM set a flag that the pipeline checks between days and while
//! reading (`requested`). A stopped run fetches nothing more, writes no partial day, saves no
//! state for the day it was in, releases its lock, and `main` exits 128 + the signal (130 for
//! SIGINT, 143 for SIGTERM). A second signal ends the process at once.

use std::sync::atomic::{AtomicI32, Ordering};

/// The signal that asked the run to stop (0: none).
static SIGNAL: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(signal: libc::c_int) {
    if SIGNAL.swap(signal, Ordering::SeqCst) != 0 {
        // SAFETY: `_exit` is async-signal-safe; a second signal means "stop now".
        unsafe { libc::_exit(128 + signal) };
    }
}

/// Install the handlers for SIGINT and SIGTERM (once, at the start of `main`).
pub fn install() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: a zeroed `sigaction` is a valid starting value; the handler only stores to an
        // atomic (or calls `_exit`), which is async-signal-safe.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            libc::sigemptyset(&mut action.sa_mask);
            action.sa_flags = libc::SA_RESTART;
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

/// The signal that asked the run to stop, if any.
pub fn requested() -> Option<i32> {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        signal => Some(signal),
    }
}

/// Resolves once a signal asks the run to stop (checked every 50 ms): raced against anything
/// that may wait long, so a stop never waits for a hung read or request.
pub async fn wait() {
    while requested().is_none() {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// `future`'s output, or `None` once a stop was asked for first: for what may wait long (a
/// read, a request and its retries), so a stop never waits for it.
pub async fn until_stopped<T>(future: impl std::future::Future<Output = T>) -> Option<T> {
    tokio::select! {
        biased;
        () = wait() => None,
        output = future => Some(output),
    }
}

/// An error that stops the run if a signal asked for it.
pub fn check() -> anyhow::Result<()> {
    match requested() {
        Some(signal) => anyhow::bail!(
            "stopped by signal {signal}: no partial day was written and the state stays at the last whole day; run again to continue"
        ),
        None => Ok(()),
    }
}

/// The exit code of a run stopped by `signal`.
pub fn exit_code(signal: i32) -> u8 {
    u8::try_from(128 + signal).unwrap_or(2)
}
