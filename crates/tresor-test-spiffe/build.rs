//! Compiles `proto/workload.proto` (the SPIFFE Workload API) with protox, a
//! pure-Rust protobuf compiler, so no protoc install is needed, and
//! generates the tonic server and client plus the prost messages.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/workload.proto";
    println!("cargo:rerun-if-changed={proto}");
    println!("cargo:rerun-if-changed=proto/google/protobuf/struct.proto");
    let descriptors = protox::compile([proto], ["proto"])?;
    tonic_prost_build::configure()
        // FetchJWTSVID, FetchJWTBundles and ValidateJWTSVID answer
        // UNIMPLEMENTED through the generated default bodies.
        .generate_default_stubs(true)
        .compile_fds(descriptors)?;
    Ok(())
}
