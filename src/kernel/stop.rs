//! A flag raised by SIGINT, SIGTERM and SIGHUP instead of dying, for loops
//! (a capture) that should end cleanly: finish the file, report, exit 0.

use std::sync::atomic::{AtomicBool, Ordering};

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn raise_flag(_: libc::c_int) {
    // Async-signal-safe: one atomic store.
    STOP.store(true, Ordering::Relaxed);
}

/// Installs the handler and returns the flag it raises. Without
/// SA_RESTART, a blocking call of the thread that gets the signal returns
/// EINTR, so a wait ends at once.
pub fn on_signals() -> nix::Result<&'static AtomicBool> {
    let action = SigAction::new(
        SigHandler::Handler(raise_flag),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is
        // async-signal-safe.
        unsafe { sigaction(signal, &action) }?;
    }
    Ok(&STOP)
}
