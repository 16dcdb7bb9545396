//! Builds tests/fake-nvml/fake_nvml.c into a `libnvidia-ml.so.1` once per test binary, under cargo's
//! scratch directory (nothing left in /tmp). Shared by the probe, operator and real-node tests with `#[path]`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

// The real-node suite loads this file and the gate twice (through the testbed and the fake NVML):
// one state-free copy each is harmless.
#[allow(clippy::duplicate_mod)]
#[path = "gate.rs"]
pub mod gate;

/// The fake library; None when no C compiler exists (a skip: noted on stderr, a failure under CI=true).
pub fn fake_lib() -> Option<&'static Path> {
    static LIB: OnceLock<Option<PathBuf>> = OnceLock::new();
    LIB.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fake-nvml/fake_nvml.c");
        // Per process: test binaries run in parallel and each builds its own copy.
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("fake-nvml-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("fake NVML directory");
        let out = dir.join("libnvidia-ml.so.1");
        let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
        match Command::new(&cc)
            // The driver's soname, so `ldconfig` files it under libnvidia-ml.so.1 as it does the real one.
            .args([
                "-shared",
                "-fPIC",
                "-Wall",
                "-Wl,-soname,libnvidia-ml.so.1",
                "-o",
            ])
            .arg(&out)
            .arg(&src)
            .status()
        {
            Ok(s) if s.success() => Some(out),
            Ok(s) => {
                panic!("{cc} failed to build the fake NVML ({s}): fix tests/fake-nvml/fake_nvml.c")
            }
            Err(e) => {
                gate::skip(&format!(
                    "no C compiler ({cc}: {e}); the fake NVML tests need one"
                ));
                None
            }
        }
    })
    .as_deref()
}
