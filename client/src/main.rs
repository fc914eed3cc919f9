//! `sotto`: the command line. Everything happens in [`cli`]; this only starts it.
#![forbid(unsafe_code)]

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
