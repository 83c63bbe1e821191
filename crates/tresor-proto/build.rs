//! Compiles `proto/tresor/v1/tresor.proto` with protox (a pure-Rust protobuf
//! compiler, so no protoc install is needed) and generates the tonic/prost
//! code plus the descriptor set that server reflection serves.

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
    tonic_prost_build::configure()
        .build_transport(false)
        .compile_fds(descriptors)?;
    Ok(())
}
