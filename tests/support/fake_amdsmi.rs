//! Builds tests/fake-amdsmi/fake_amdsmi.c into `libamd_smi.so.<major>` once per major and test binary,
//! under cargo's scratch directory: majors below 26 with ROCm 6's `amdsmi_version_t` (`year` first, the
//! soname major; `-DFAKE_V6`), 26 and up with ROCm 7's. [`install`] puts one under a fake host root with
//! its `fake_amdsmi.conf`, every directory from the root to it made 0755 (the reader refuses a
//! group-writable one, whatever the umask). [`fake_libdrm`] is a stand-in `libdrm.so.2` for `drm 1`.

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
    // dlopen/dladdr: in libc since glibc 2.34, in libdl before.
    match cmd.arg("-o").arg(&out).arg(&src).arg("-ldl").status() {
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

/// A shared object with soname `libdrm.so.2` and nothing in it: what `drm 1` dlopens.
pub fn fake_libdrm() -> Option<PathBuf> {
    static LIB: Mutex<Option<Option<PathBuf>>> = Mutex::new(None);
    let mut lib = LIB.lock().unwrap_or_else(|e| e.into_inner());
    lib.get_or_insert_with(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("fake-libdrm-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let src = dir.join("drm.c");
        std::fs::write(&src, "int fake_drm_marker(void) { return 2; }\n").unwrap();
        let out = dir.join("libdrm.so.2");
        let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
        match Command::new(&cc)
            .args(["-shared", "-fPIC", "-Wl,-soname,libdrm.so.2", "-o"])
            .arg(&out)
            .arg(&src)
            .status()
        {
            Ok(s) if s.success() => Some(out),
            Ok(s) => panic!("{cc} failed to build the fake libdrm ({s})"),
            Err(e) => {
                gate::skip(&format!("no C compiler ({cc}: {e})"));
                None
            }
        }
    })
    .clone()
}

/// Every directory from `root` down to `root/dir`, created, mode 0755.
pub fn plain_dirs(root: &Path, dir: &str) {
    use std::os::unix::fs::PermissionsExt;
    let mut d = root.to_path_buf();
    std::fs::create_dir_all(root.join(dir)).unwrap();
    for c in Path::new(dir).components() {
        d.push(c);
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// Copy the fake of `major` to `<root>/<dir>/libamd_smi.so.<major>` (mode 0755) with `conf` beside it;
/// the path written, or `None` without a C compiler.
pub fn install(root: &Path, dir: &str, major: u32, conf: &str) -> Option<PathBuf> {
    install_lib(root, dir, &fake_lib(major)?, major, conf)
}

/// [`install`] of a given build (`fake_old_lib`'s).
pub fn install_lib(root: &Path, dir: &str, lib: &Path, major: u32, conf: &str) -> Option<PathBuf> {
    plain_dirs(root, dir);
    let d = root.join(dir);
    let to = d.join(format!("libamd_smi.so.{major}"));
    std::fs::copy(lib, &to).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(d.join("fake_amdsmi.conf"), conf).unwrap();
    Some(to)
}
