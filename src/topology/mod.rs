//! The topology file: parse and validate.
