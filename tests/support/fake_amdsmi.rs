//! Builds tests/fake-amdsmi/fake_amdsmi.c into `libamd_smi.so.<major>` once per major and test binary,
//! under cargo's scratch directory: majors 24 and 25 with ROCm 6's `amdsmi_version_t` (a `year` first),
//! 26 with ROCm 7's. [`install`] puts one under a fake host root with its `fake_amdsmi.conf`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

// Loaded beside fake_nvml.rs, which has its own copy: state-free, harmless.
#[allow(clippy::duplicate_mod)]
#[path = "gate.rs"]
mod gate;

/// The fake library of soname major `major`; `None` when no C compiler exists (a skip, said on stderr).
pub fn fake_lib(major: u32) -> Option<PathBuf> {
    build_once(major, false)
}

/// As [`fake_lib`], without `amdsmi_get_gpu_bad_page_info` (an older library's missing symbol).
pub fn fake_old_lib(major: u32) -> Option<PathBuf> {
    build_once(major, true)
}

fn build_once(major: u32, old: bool) -> Option<PathBuf> {
    /// (major, without bad pages) -> the build.
    type Builds = HashMap<(u32, bool), Option<PathBuf>>;
    static LIBS: Mutex<Option<Builds>> = Mutex::new(None);
    let mut libs = LIBS.lock().unwrap_or_else(|e| e.into_inner());
    libs.get_or_insert_with(HashMap::new)
        .entry((major, old))
        .or_insert_with(|| build(major, old))
        .clone()
}

fn build(major: u32, old: bool) -> Option<PathBuf> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fake-amdsmi/fake_amdsmi.c");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "fake-amdsmi-{}-{major}{}",
        std::process::id(),
        if old { "-old" } else { "" }
    ));
    std::fs::create_dir_all(&dir).expect("fake libamd_smi directory");
    let out = dir.join(format!("libamd_smi.so.{major}"));
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let mut cmd = Command::new(&cc);
    cmd.args(["-shared", "-fPIC", "-Wall"])
        .arg(format!("-Wl,-soname,libamd_smi.so.{major}"));
    if major < 26 {
        cmd.arg("-DFAKE_V6");
    }
    if old {
        cmd.arg("-DFAKE_OLD");
    }
    match cmd.arg("-o").arg(&out).arg(&src).status() {
        Ok(s) if s.success() => Some(out),
        Ok(s) => panic!("{cc} failed to build the fake libamd_smi ({s})"),
        Err(e) => {
            gate::skip(&format!(
                "no C compiler ({cc}: {e}); the fake libamd_smi tests need one"
            ));
            None
        }
    }
}

/// Copy the fake of `major` to `<root>/<dir>/libamd_smi.so.<major>` (mode 0755) with `conf` beside it;
/// the path written, or `None` without a C compiler.
pub fn install(root: &Path, dir: &str, major: u32, conf: &str) -> Option<PathBuf> {
    install_lib(root, dir, &fake_lib(major)?, major, conf)
}

/// [`install`] of a given build (`fake_old_lib`'s).
pub fn install_lib(root: &Path, dir: &str, lib: &Path, major: u32, conf: &str) -> Option<PathBuf> {
    let d = root.join(dir);
    std::fs::create_dir_all(&d).unwrap();
    let to = d.join(format!("libamd_smi.so.{major}"));
    std::fs::copy(lib, &to).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(d.join("fake_amdsmi.conf"), conf).unwrap();
    Some(to)
}
