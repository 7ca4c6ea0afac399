//! The `nslab` command: a thin layer over the library.

mod cli;

use nslab::kernel::{init, process};

fn main() {
    // A zygote is this same binary; decide before anything else runs.
    let mut args = std::env::args_os();
    if args.next().is_some_and(|a| a == process::INIT_ARGV0) {
        match args.next() {
            Some(a) if a == init::ZYGOTE_MARKER => init::zygote_main(),
            _ => {
                eprintln!("nslab-init: not started by nslab");
                std::process::exit(2);
            }
        }
    }
    std::process::exit(cli::main());
}
