//! Compiles `proto/` with protox (pure Rust), so no system `protoc` is needed.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Read at run time: a build script binary may be reused from a build
    // made in another checkout sharing the target dir.
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let files = [
        "chatterbox/auth/v1/auth.proto",
        "chatterbox/user/v1/user.proto",
        "chatterbox/conversation/v1/conversation.proto",
        "chatterbox/message/v1/message.proto",
        "chatterbox/presence/v1/presence.proto",
        "chatterbox/media/v1/media.proto",
        "chatterbox/events/v1/events.proto",
    ];

    let descriptors = protox::compile(files, [&root])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("descriptors.bin"), prost::Message::encode_to_vec(&descriptors))?;
    tonic_prost_build::configure()
        .file_descriptor_set_path(out.join("descriptors.bin"))
        .skip_protoc_run()
        .compile_fds(descriptors)?;
    println!("cargo:rerun-if-changed={}", root.display());
    Ok(())
}
