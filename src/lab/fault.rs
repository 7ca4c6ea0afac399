//! Test-only fault injection, compiled in only with the `fault-injection`
//! feature (which `scripts/test` enables). With `NSLAB_FAULT_AFTER=K` in the
//! environment, `up` then kills itself with SIGKILL (no cleanup of any kind)
//! right after its K-th kernel-changing step, so tests can show that `down`
//! clears a crash at every point. Unset, a step costs one relaxed atomic
//! add. Without the feature, a step is nothing at all.

#[cfg(feature = "fault-injection")]
mod armed {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// The environment variable that arms the fault.
    const FAULT_ENV: &str = "NSLAB_FAULT_AFTER";

    static LIMIT: OnceLock<Option<usize>> = OnceLock::new();
    static STEPS: AtomicUsize = AtomicUsize::new(0);

    fn limit() -> Option<usize> {
        *LIMIT.get_or_init(|| std::env::var(FAULT_ENV).ok()?.parse().ok())
    }

    /// Marks the end of one kernel-changing step.
    pub(crate) fn step() {
        let taken = STEPS.fetch_add(1, Ordering::Relaxed) + 1;
        if limit() == Some(taken) {
            // SAFETY: kill(2) on our own pid; SIGKILL cannot be caught.
            unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
        }
    }

    /// When armed, how many steps this process took (for the test to know
    /// when it has covered them all).
    pub(crate) fn report() -> Option<usize> {
        limit().map(|_| STEPS.load(Ordering::Relaxed))
    }
}

#[cfg(feature = "fault-injection")]
pub(crate) use armed::{report, step};

/// Marks the end of one kernel-changing step: nothing without the feature.
#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub(crate) fn step() {}

/// Never armed without the feature.
#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub(crate) fn report() -> Option<usize> {
    None
}
