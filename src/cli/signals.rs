//! A flag raised by SIGINT, SIGTERM and SIGHUP instead of dying, for loops
//! (a capture) that should end cleanly: finish the file, report, exit 0.

use std::sync::atomic::{AtomicBool, Ordering};

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

/// The signals that raise the flag.
const SIGNALS: [Signal; 3] = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP];

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn raise_flag(_: libc::c_int) {
    // Async-signal-safe: one atomic store.
    STOP.store(true, Ordering::Relaxed);
}

/// The handlers, installed: while this lives the signals raise
/// [`flag`](Self::flag); dropping it puts the previous handlers back. One
/// at a time: the flag is process-wide.
#[derive(Debug)]
pub(super) struct StopOnSignals {
    previous: Vec<(Signal, SigAction)>,
}

/// Lowers the flag and installs the handler. Without SA_RESTART, a
/// blocking call of the thread that gets the signal returns EINTR (or a
/// short count), so a wait or a write ends at once.
pub(super) fn on_signals() -> nix::Result<StopOnSignals> {
    STOP.store(false, Ordering::Relaxed);
    let action = SigAction::new(
        SigHandler::Handler(raise_flag),
        SaFlags::empty(),
        SigSet::empty(),
    );
    let mut guard = StopOnSignals {
        previous: Vec::with_capacity(SIGNALS.len()),
    };
    for signal in SIGNALS {
        // SAFETY: the handler only stores to an atomic, which is
        // async-signal-safe. On an error, dropping `guard` restores the
        // handlers replaced so far.
        let previous = unsafe { sigaction(signal, &action) }?;
        guard.previous.push((signal, previous));
    }
    Ok(guard)
}

impl StopOnSignals {
    /// Raised once one of the signals has come since [`on_signals`].
    pub(super) fn flag(&self) -> &'static AtomicBool {
        &STOP
    }
}

impl Drop for StopOnSignals {
    fn drop(&mut self) {
        for (signal, previous) in self.previous.drain(..).rev() {
            // SAFETY: `previous` is what sigaction returned for this
            // signal: a handler (or default/ignore) that was in place.
            let _ = unsafe { sigaction(signal, &previous) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The handler's address (0 for SIG_DFL, 1 for SIG_IGN).
    fn handler_of(signal: Signal) -> usize {
        let probe = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
        // SAFETY: swaps in the default action and at once puts back what
        // was there, only to read it.
        unsafe {
            let current = sigaction(signal, &probe).expect("read the action");
            sigaction(signal, &current).expect("put it back");
            match current.handler() {
                SigHandler::SigDfl => 0,
                SigHandler::SigIgn => 1,
                SigHandler::Handler(f) => f as usize,
                SigHandler::SigAction(f) => f as usize,
            }
        }
    }

    /// SIGHUP only: the test harness may have its own SIGINT handling.
    #[test]
    fn raises_the_flag_and_restores_the_previous_handler() {
        let before = handler_of(Signal::SIGHUP);
        STOP.store(true, Ordering::Relaxed);
        let guard = on_signals().expect("install");
        assert!(!guard.flag().load(Ordering::Relaxed), "lowered at install");
        assert_eq!(handler_of(Signal::SIGHUP), raise_flag as *const () as usize);
        nix::sys::signal::raise(Signal::SIGHUP).expect("raise");
        assert!(guard.flag().load(Ordering::Relaxed));
        drop(guard);
        assert_eq!(handler_of(Signal::SIGHUP), before, "restored on drop");
    }
}
