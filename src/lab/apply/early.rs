//! `apply`'s work that can start before its file is parsed (most of the
//! time `apply` takes on a big lab goes to parsing and validating the
//! file): with the lab name the file seems to have, take that lab's lock
//! and read its state (and find the host's cgroup hierarchies) on a thread
//! of its own, and start a zygote for new nodes. If the parsed file names
//! another lab, all of it is let go.

use std::path::Path;
use std::thread::JoinHandle;

use super::super::LabError;
use crate::kernel::cgroup::Cgroups;
use crate::kernel::init::Zygote;
use crate::state::{self, LabLock, Recorded};

/// A lab's lock, and its state read under it.
pub(super) type Locked = (LabLock, Option<Recorded>);
/// [`Locked`] and the host's cgroup hierarchies, being taken and read.
type Reading = JoinHandle<Result<(Locked, Cgroups), LabError>>;

/// What `apply` finds started: the lab's lock and state (`None` when
/// nothing was started for the lab), the cgroup hierarchies, a zygote.
pub(super) type Started = (Option<Locked>, Option<Cgroups>, Option<Zygote>);

/// Work started for the lab a topology file seems to name.
#[derive(Debug, Default)]
pub(crate) struct EarlyStart {
    lab: Option<String>,
    reading: Option<Reading>,
    zygote: Option<Zygote>,
}

impl EarlyStart {
    /// Starts it for the running lab `file` seems to name; nothing when
    /// no such lab runs. `exe` as for `up` (see `UpOptions::init_exe`).
    pub(crate) fn start(file: &Path, exe: Option<&Path>) -> EarlyStart {
        let Some(lab) = crate::topology::peek_lab_name(file) else {
            return EarlyStart::default();
        };
        if !state::exists(&lab).unwrap_or(false) {
            return EarlyStart::default();
        }
        let name = lab.clone();
        let reading = std::thread::spawn(move || {
            let lock = LabLock::acquire(&name, || {
                eprintln!("nslab: waiting for another nslab working on lab {name}")
            })?;
            let recorded = state::read(&name)?;
            let c = Cgroups::detect()?;
            Ok(((lock, recorded), c))
        });
        // On this thread: a zygote dies with the thread that started it.
        let zygote = Zygote::start(&lab, exe).ok();
        EarlyStart {
            lab: Some(lab),
            reading: Some(reading),
            zygote,
        }
    }

    /// What was started for `lab`. Work started for another lab is let go.
    pub(super) fn take(mut self, lab: &str) -> Result<Started, LabError> {
        let reading = self.reading.take();
        let zygote = self.zygote.take();
        if self.lab.as_deref() != Some(lab) {
            // The lock (if taken) goes with the thread's result.
            if let Some(reading) = reading {
                let _ = reading.join();
            }
            return Ok((None, None, None));
        }
        let Some(reading) = reading else {
            return Ok((None, None, zygote));
        };
        let (read, cgroups) = reading
            .join()
            .map_err(|_| LabError::Panicked("the state reading thread"))??;
        Ok((Some(read), Some(cgroups), zygote))
    }
}
