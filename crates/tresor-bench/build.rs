//! Compiles the bench echo service (`tresor.bench.v1`) with protox (pure
//! Rust, no protoc needed). It lives apart from `tresor.v1` so that the
//! server's reflection descriptor holds tresor's own services only.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let echo = "proto/tresor/bench/v1/echo.proto";
    println!("cargo:rerun-if-changed={echo}");
    tonic_prost_build::configure()
        .build_transport(false)
        .compile_fds(protox::compile([echo], ["proto"])?)?;
    Ok(())
}
