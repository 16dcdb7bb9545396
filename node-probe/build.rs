//! Compiles the kubelet PodResources proto in pure Rust (protox: no `protoc` on the build machine).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/podresources.proto");
    let fds = protox::compile(["podresources.proto"], ["proto"])?;
    // Server code too: the tests' fake kubelet implements the same service. It costs nothing in the
    // binary (unused code is not linked) and needs no tonic server feature to compile.
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(fds)?;
    Ok(())
}
