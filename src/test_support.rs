//! Not API: internals that nslab's own integration tests look at (the
//! inits in /proc, the namespaces entered, a lab built without the `Lab`
//! handle). Hidden from the docs; it changes whenever the code does.

pub use crate::check::run::icmp_ratelimits;
pub use crate::explain::RECORD_ROOT;
pub use crate::generate::{Shape, generate};
pub use crate::kernel::init::EXE_ENV;
pub use crate::kernel::namespace::{ENTER_ORDER, NsKind, ns_inode};
pub use crate::kernel::process::{FoundInit, find_inits};
pub use crate::lab::{RunningNode, UpOptions, down, find_labs, resolve_node, running_nodes, up};
pub use crate::privileges::check as check_privileges;
