//! The `tresor` binary: a thin shell over [`tresor::cli`].

#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    tresor::cli::main()
}
