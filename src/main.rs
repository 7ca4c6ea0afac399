//! The `nslab` binary: the command line, or a node's init when nslab
//! starts itself as one. Everything lives in the library.

fn main() {
    std::process::exit(nslab::main());
}
