//! Compresses the built-in scenarios (`src/scenarios/*.json`, about 0.9 MB of JSON) into `OUT_DIR`, where
//! `scenarios::BUILTIN` embeds them. node-probe carries them, and copy delivery streams node-probe to a node on
//! every call: gzip'ed they take about 0.07 MB of it.

use std::io::Write;
use std::path::{Path, PathBuf};

fn main() {
    let dir = Path::new("src/scenarios");
    println!("cargo::rerun-if-changed=src/scenarios");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("reading src/scenarios").path();
        if path.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let json = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&json).expect("compressing in memory");
        let gz = gz.finish().expect("compressing in memory");
        let name = path.file_name().expect("a file name").to_string_lossy();
        let target = out.join(format!("{name}.gz"));
        std::fs::write(&target, gz).unwrap_or_else(|e| panic!("{}: {e}", target.display()));
    }
}
