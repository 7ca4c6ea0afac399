//! Progress of long operations, for a caller that wants to show it. The
//! library only counts; drawing is the caller's business (the CLI draws a
//! line on a terminal).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Called with a phase name, how much of it is done and its total.
pub(super) type ProgressFn = dyn Fn(&str, usize, usize) + Send + Sync;

/// An optional progress callback.
#[derive(Clone, Default)]
pub struct Progress(Option<Arc<ProgressFn>>);

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Progress(on)"
        } else {
            "Progress(off)"
        })
    }
}

impl Progress {
    pub fn new(callback: impl Fn(&str, usize, usize) + Send + Sync + 'static) -> Self {
        Self(Some(Arc::new(callback)))
    }

    /// Starts counting a phase of `total` items.
    pub(crate) fn phase(&self, name: &'static str, total: usize) -> Phase {
        let phase = Phase {
            callback: self.0.clone(),
            name,
            total,
            done: AtomicUsize::new(0),
        };
        phase.report(0);
        phase
    }
}

/// One phase being counted.
pub(crate) struct Phase {
    callback: Option<Arc<ProgressFn>>,
    name: &'static str,
    total: usize,
    done: AtomicUsize,
}

impl Phase {
    pub(crate) fn tick(&self) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        self.report(done);
    }

    fn report(&self, done: usize) {
        if let Some(callback) = &self.callback {
            callback(self.name, done, self.total);
        }
    }
}
