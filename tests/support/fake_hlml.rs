//! Builds tests/fake-hlml/fake_hlml.c into `libhlml.so` once per test binary (and once more with
//! `-DFAKE_OLD`, an older library's missing symbols), under cargo's scratch directory. [`install`] puts it
//! under a fake host root with its `fake_hlml.conf`, every directory from the root to it made 0755 (the
//! reader refuses a group-writable one, whatever the umask).

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

#[allow(clippy::duplicate_mod)]
#[path = "gate.rs"]
mod gate;

/// Where Intel installs it, and pyhlml's default path (`pyhlml/hlml_lib.py:9`).
pub const DIR: &str = "usr/lib/habanalabs";

/// The stand-in library; `None` when no C compiler exists (a skip, said on stderr).
pub fn fake_lib() -> Option<PathBuf> {
    build_once(false)
}

/// As [`fake_lib`], without `hlml_get_driver_version` and `hlml_device_get_replaced_rows_pending_status`.
pub fn fake_old_lib() -> Option<PathBuf> {
    build_once(true)
}

fn build_once(old: bool) -> Option<PathBuf> {
    static LIBS: Mutex<Option<HashMap<bool, Option<PathBuf>>>> = Mutex::new(None);
    let mut libs = LIBS.lock().unwrap_or_else(|e| e.into_inner());
    libs.get_or_insert_with(HashMap::new)
        .entry(old)
        .or_insert_with(|| build(old))
        .clone()
}

fn build(old: bool) -> Option<PathBuf> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fake-hlml/fake_hlml.c");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "fake-hlml-{}{}",
        std::process::id(),
        if old { "-old" } else { "" }
    ));
    std::fs::create_dir_all(&dir).expect("fake libhlml directory");
    let out = dir.join("libhlml.so");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let mut cmd = Command::new(&cc);
    cmd.args(["-shared", "-fPIC", "-Wall", "-Wl,-soname,libhlml.so"]);
    if old {
        cmd.arg("-DFAKE_OLD");
    }
    // dladdr: in libc since glibc 2.34, in libdl before.
    match cmd.arg("-o").arg(&out).arg(&src).arg("-ldl").status() {
        Ok(s) if s.success() => Some(out),
        Ok(s) => panic!("{cc} failed to build the fake libhlml ({s})"),
        Err(e) => {
            gate::skip(&format!(
                "no C compiler ({cc}: {e}); the fake libhlml tests need one"
            ));
            None
        }
    }
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

/// Copy `lib` to `<root>/<dir>/libhlml.so` (mode 0755) with `conf` beside it; the path written.
pub fn install_lib(root: &Path, dir: &str, lib: &Path, conf: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    plain_dirs(root, dir);
    let d = root.join(dir);
    let to = d.join("libhlml.so");
    std::fs::copy(lib, &to).unwrap();
    std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(d.join("fake_hlml.conf"), conf).unwrap();
    to
}

/// [`install_lib`] of the stand-in at pyhlml's default path; `None` without a C compiler.
pub fn install(root: &Path, conf: &str) -> Option<PathBuf> {
    Some(install_lib(root, DIR, &fake_lib()?, conf))
}

/// One `device` line of the conf: bus id as the library writes it, serial, module id, ECC
/// (corrected/uncorrected volatile, then aggregate), rows pending.
pub fn device(bus_id: &str, serial: &str, module: u32, ecc: [u64; 4], pending: bool) -> String {
    format!(
        "device {bus_id} {serial} {module} {} {} {} {} {}\n",
        ecc[0], ecc[1], ecc[2], ecc[3], pending as u8
    )
}
