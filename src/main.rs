//! The `tresor` binary: a thin shell over [`tresor::cli`].

#![forbid(unsafe_code)]

/// jemalloc fragments less than glibc's malloc under the server's
/// many-threaded, many-sized allocations (see the `jemalloc` feature).
#[cfg(feature = "jemalloc")]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    tresor::cli::main()
}
