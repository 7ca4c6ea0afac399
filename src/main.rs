//! The `nslab` command: a thin layer over the library.

mod cli;

fn main() {
    // A node init is this same binary; decide before anything else runs.
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == nslab::kernel::process::INIT_MARKER)
    {
        nslab::kernel::init::run();
    }
    std::process::exit(cli::main());
}
