//! nslab: network labs on one Linux host from kernel namespaces alone.
//!
//! # Layers
//!
//! The modules are the data flow, bottom to top, and each imports only the
//! ones below it:
//!
//! 1. [`spec`]: the validated description of a lab (nodes, links,
//!    impairments, expectations), the name rules, and the typed references
//!    [`LabName`](spec::LabName), [`NodeRef`](spec::NodeRef) and
//!    [`InterfaceRef`](spec::InterfaceRef). Imports nothing of the crate.
//! 2. [`topology`]: YAML (and [`TopologyBuilder`]) into a [`Topology`].
//! 3. [`plan`]: what `up` builds, derived from a topology: link ends placed,
//!    the qdisc layout of impairments. Pure data.
//! 4. `kernel` (private): namespaces, the node init, rtnetlink requests (one
//!    file each), sysctls, entering a node. Only kernel work.
//! 5. `state` (private): the plan and journal under /run/nslab, the lock.
//! 6. `lab` (private): `up`, `down`, `exec`, `impair`, `inspect`, `stats`,
//!    `events` over
//!    plan → kernel → state, reaching the kernel through one trait so that
//!    rollback is tested without root.
//! 7. [`check`] (with its probes), `capture` (with its packet sockets),
//!    `explain`, `graph`, `generate`: the verbs built on the layers below;
//!    [`spread`]: a lab spread over several hosts, each host's part built
//!    there by its own nslab over SSH.
//! 8. [`scenario`]: `nslab run-scenario`, the timed link, node and check
//!    steps of a topology's `scenario:`, played on a running lab.
//! 9. [`Lab`]: the Rust API over all of it; `cli` (private): one file per
//!    command-line verb, each a thin call into the library.
//!
//! The public API is what a program or a test that builds labs needs:
//! [`Lab`], [`LabOptions`], [`Topology`] and its builder, the data types
//! of [`spec`] and [`plan`], the reports ([`UpReport`], [`DownReport`],
//! [`Impairment`], [`StatsReport`], [`check::CheckReport`]), the [`events`]
//! of a running lab ([`Event`], [`Events`]) and the errors.
//!
//! # A lab in a test
//!
//! [`Lab`] brings a topology up (from a file, YAML text or
//! [`Topology::builder`]), runs commands and
//! Rust code in its nodes, and tears it all down when dropped. It needs
//! root (or CAP_SYS_ADMIN and CAP_NET_ADMIN), and the `nslab` binary to run
//! as the node inits: a test names it with `CARGO_BIN_EXE_nslab`.
//!
//! ```no_run
//! use nslab::{LabOptions, topology::Topology};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let topology = Topology::builder("routed")
//!     .node("h1")
//!     .node("r1")
//!     .node("h2")
//!     .sysctl("r1", "net.ipv4.ip_forward", 1)
//!     .link(["h1:eth0", "r1:eth0"])
//!     .ipv4(["10.0.1.2/30", "10.0.1.1/30"])
//!     .link(["r1:eth1", "h2:eth0"])
//!     .ipv4(["10.0.2.1/30", "10.0.2.2/30"])
//!     .route("h1", "default via 10.0.1.1")
//!     .route("h2", "default via 10.0.2.1")
//!     .build()?;
//! let lab = LabOptions::new()
//!     .unique() // a name of its own: parallel tests never collide
//!     // In a test of the crate that builds nslab: env!("CARGO_BIN_EXE_nslab")
//!     .nslab_exe("/usr/local/bin/nslab")
//!     .up(&topology)?;
//!
//! // A UDP socket bound inside h2, served from a thread of this process.
//! let server = lab.in_netns("h2", || std::net::UdpSocket::bind("0.0.0.0:7000"))??;
//! std::thread::spawn(move || {
//!     let mut buf = [0; 1500];
//!     while let Ok((n, from)) = server.recv_from(&mut buf) {
//!         let _ = server.send_to(&buf[..n], from);
//!     }
//! });
//!
//! let h2 = lab.ipv4("h2", "eth0").expect("h2 has an address");
//! let ping = lab.exec("h1", ["ping", "-c", "1", &h2.to_string()])?;
//! assert!(ping.success(), "{}", ping.stderr_text());
//! # Ok(())
//! # } // the lab is torn down here, when `lab` is dropped
//! ```

// The layers and their order are in the module doc above (rustfmt sorts
// this list); tests/layers.rs checks that none imports a higher one.
mod api;
mod capture;
pub mod check;
mod cli;
mod explain;
mod generate;
mod graph;
mod kernel;
mod lab;
pub mod plan;
mod privileges;
pub mod scenario;
pub mod spec;
pub mod spread;
mod state;
pub mod topology;

pub use api::{ApiError, Lab, LabOptions, Output, Process};
/// What happens in running labs: [`Lab::events`] and `nslab events`.
pub use lab::events;
pub use lab::events::{Event, EventStream, Events};
pub use lab::{
    ApplyReport, DownReport, Impairment, InterfaceStats, LabError, NodeChange, NodeStats,
    StatsReport, UpReport,
};
pub use privileges::MissingCapabilities;
pub use spec::Topology;
pub use topology::{Problem, TopologyBuilder, TopologyError};

#[doc(hidden)]
pub mod test_support;

/// The `nslab` binary's `main`: a node's init when nslab started this
/// process as one (the zygote is this same binary, so this is decided
/// before anything else runs), else the command line. Returns the exit
/// code. Not API: it exists for the binary alone.
#[doc(hidden)]
pub fn main() -> i32 {
    use kernel::{init, process};
    let mut args = std::env::args_os();
    let argv0 = args.next();
    if argv0
        .as_ref()
        .is_some_and(|a| a == kernel::forward::FORWARD_ARGV0)
    {
        return kernel::forward::relay_main();
    }
    if argv0.is_some_and(|a| a == process::INIT_ARGV0) {
        match args.next() {
            Some(a) if a == init::ZYGOTE_MARKER => init::zygote_main(),
            _ => {
                eprintln!("nslab-init: not started by nslab");
                return 2;
            }
        }
    }
    cli::main()
}
