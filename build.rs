//! Compiles `proto/` with protox (a pure-Rust protobuf compiler, so no protoc
//! install is needed) and generates the tonic/prost code plus the descriptor
//! set that server reflection serves.
//!
//! The bench echo service (`tresor.bench.v1`) is compiled separately so that
//! the reflection descriptor holds `tresor.v1` only.

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?);

    let proto = "proto/tresor/v1/tresor.proto";
    println!("cargo:rerun-if-changed={proto}");
    let descriptors = protox::compile([proto], ["proto"])?;
    std::fs::write(
        out_dir.join("tresor_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;
    tonic_prost_build::configure().compile_fds(descriptors)?;

    let echo = "proto/tresor/bench/v1/echo.proto";
    println!("cargo:rerun-if-changed={echo}");
    tonic_prost_build::configure().compile_fds(protox::compile([echo], ["proto"])?)?;
    Ok(())
}
