//! The child side of [`super::smi`]: `node-probe __amd-smi-child <library> <soname major>` loads the host's
//! `libamd_smi` (the parent passes `/proc/self/fd/3`, the file it checked, see `smi.rs`), reads it and
//! prints one JSON line (a `Reading<AmdSmiLibraryFacts>`) on stdout. It runs in its own process so that an
//! abort, a crash or a hang in the vendor library costs only this reading.
//!
//! ABI, from the public header `include/amd_smi/amdsmi.h` (github.com/ROCm/amdsmi) and checked against
//! every PyPI `amdsmi` release 6.0.0..7.0.2 by `abi_matches_every_pypi_release` below (AMD's generated
//! ctypes, `amdsmi/amdsmi_wrapper.py`):
//! - `amdsmi_status_t` is a C enum (4 bytes); `AMDSMI_STATUS_SUCCESS` 0, `_NOT_SUPPORTED` 2,
//!   `_NOT_YET_IMPLEMENTED` 3, `_NO_PERM` 10, `_NOT_INIT` 32.
//! - `amdsmi_init(uint64_t flags)` with `AMDSMI_INIT_AMD_GPUS = 1 << 1`; `amdsmi_shut_down(void)`.
//!   Every other call answers `AMDSMI_STATUS_NOT_INIT` before init (`src/amd_smi/amd_smi.cc:81-85`
//!   AMDSMI_CHECK_INIT, in `amdsmi_get_lib_version` at :1988, commit 0ceca28f), so the version is read
//!   after init, as AMD's own CLI does (`amdsmi_cli/amdsmi_init.py:83`, then `amdsmi_commands.py:106`).
//! - `amdsmi_version_t`: ROCm 6.x (soname majors up to 25) is `{uint32 year, major, minor, release;
//!   const char *build}` and its soname major is `year` (amdsmi.h:177 `AMDSMI_LIB_VERSION_YEAR 24`,
//!   :180 `_MAJOR 7`; CMakeLists.txt:31 package version "24.7.0" gives the soname); AMD prints it
//!   `year.major.minor.release` (`amdsmi_cli/amdsmi_commands.py:107`). ROCm 7.x (26) dropped `year`:
//!   `{uint32 major, minor, release; const char *build}`, `major` 26 being the soname major.
//! - `amdsmi_get_socket_handles(uint32_t *n, void **)`, `amdsmi_get_processor_handles(void *socket,
//!   uint32_t *n, void **)`: called with a NULL buffer for the count, then with one.
//! - `amdsmi_get_gpu_device_bdf(void *, amdsmi_bdf_t *)`: a `uint64_t` union, function bits 0-2, device
//!   3-7, bus 8-15, domain 16-63.
//! - `amdsmi_get_gpu_bad_page_info(void *, uint32_t *n, amdsmi_retired_page_record_t *)`: records of
//!   `{uint64 page_address, uint64 page_size, int status}` (24 bytes), status RESERVED 0, PENDING 1,
//!   UNRESERVABLE 2; a NULL buffer asks for the count.
//!
//! A function missing from an older library is an inline "not in this version" error on its field.
//! Once `amdsmi_init` succeeded, `amdsmi_shut_down` runs on every path out.

use std::ffi::{OsString, c_int, c_void};
use std::process::ExitCode;

use gpu_diag::facts::{
    AmdSmiBadPagesFacts, AmdSmiGpuFacts, AmdSmiLibraryFacts, FieldError, FieldErrorKind, Reading,
};

const AMDSMI_INIT_AMD_GPUS: u64 = 1 << 1;
const STATUS_SUCCESS: c_int = 0;
const STATUS_NOT_SUPPORTED: c_int = 2;
const STATUS_NOT_YET_IMPLEMENTED: c_int = 3;
const STATUS_NO_PERM: c_int = 10;
const STATUS_NOT_INIT: c_int = 32;
const PAGE_RESERVED: c_int = 0;
const PAGE_PENDING: c_int = 1;
const PAGE_UNRESERVABLE: c_int = 2;
/// The first soname major of ROCm 7's `amdsmi_version_t` (no `year`).
const FIRST_MAJOR_WITHOUT_YEAR: u32 = 26;
/// Every function read, for the truth test.
#[cfg(test)]
const FUNCTIONS: &[&str] = &[
    "amdsmi_init",
    "amdsmi_shut_down",
    "amdsmi_get_lib_version",
    "amdsmi_get_socket_handles",
    "amdsmi_get_processor_handles",
    "amdsmi_get_gpu_device_bdf",
    "amdsmi_get_gpu_bad_page_info",
];
/// Bounds on what the library may claim: a node has at most a few dozen GPUs (the header's
/// `AMDSMI_MAX_DEVICES` is 32), and the driver's bad-page table a few thousand records.
const MAX_HANDLES: u32 = 256;
const MAX_PAGES: u32 = 1 << 16;

type Init = unsafe extern "C" fn(u64) -> c_int;
type ShutDown = unsafe extern "C" fn() -> c_int;
type GetVersion = unsafe extern "C" fn(*mut c_void) -> c_int;
type GetSockets = unsafe extern "C" fn(*mut u32, *mut *mut c_void) -> c_int;
type GetProcessors = unsafe extern "C" fn(*mut c_void, *mut u32, *mut *mut c_void) -> c_int;
type GetBdf = unsafe extern "C" fn(*mut c_void, *mut u64) -> c_int;
type GetBadPages = unsafe extern "C" fn(*mut c_void, *mut u32, *mut PageRecord) -> c_int;

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct PageRecord {
    page_address: u64,
    page_size: u64,
    status: c_int,
}

/// The version struct's words, read into a buffer larger than either layout (a library with a longer
/// struct than its header said cannot write past it).
#[repr(C, align(8))]
struct VersionBuf([u32; 16]);

pub fn main(args: &[OsString]) -> ExitCode {
    let reading = match (
        args.first(),
        args.get(1).and_then(|m| m.to_str()?.parse().ok()),
    ) {
        (Some(path), Some(major)) => read(path, major),
        _ => err(
            FieldErrorKind::Unknown,
            "usage: __amd-smi-child <library> <major>".into(),
        ),
    };
    match serde_json::to_string(&reading) {
        Ok(s) => {
            println!("{s}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("node-probe: {e}");
            ExitCode::from(1)
        }
    }
}

fn err<T>(kind: FieldErrorKind, msg: String) -> Reading<T> {
    Reading::Err(FieldError::with_message(kind, msg))
}

fn status_error(call: &str, s: c_int) -> FieldError {
    let (kind, name) = match s {
        STATUS_NOT_SUPPORTED => (FieldErrorKind::NotSupported, " (NOT_SUPPORTED)"),
        STATUS_NOT_YET_IMPLEMENTED => (FieldErrorKind::NotSupported, " (NOT_YET_IMPLEMENTED)"),
        STATUS_NO_PERM => (FieldErrorKind::NoPermission, " (NO_PERM)"),
        STATUS_NOT_INIT => (FieldErrorKind::Unknown, " (NOT_INIT)"),
        _ => (FieldErrorKind::Unknown, ""),
    };
    FieldError::with_message(kind, format!("{call} returned amdsmi status {s}{name}"))
}

/// A symbol of the library, or the inline error naming the version that lacks it.
fn symbol<T: Copy>(lib: &libloading::Library, name: &str, version: &str) -> Result<T, FieldError> {
    // SAFETY: `T` is the function type of `name` in the public header (see the module's notes).
    unsafe { lib.get::<T>(name.as_bytes()) }
        .map(|s| *s)
        .map_err(|_| {
            FieldError::with_message(
                FieldErrorKind::NotSupported,
                format!("{name} is not in libamd_smi {version}"),
            )
        })
}

/// The version struct as the release of soname major `major` lays it out: the words that name the
/// soname major, and the version as AMD prints it.
fn version_of(major: u32, w: &[u32; 16]) -> (u32, String) {
    if major < FIRST_MAJOR_WITHOUT_YEAR {
        // {year, major, minor, release}: the soname major is `year`.
        (w[0], format!("{}.{}.{}.{}", w[0], w[1], w[2], w[3]))
    } else {
        (w[0], format!("{}.{}.{}", w[0], w[1], w[2]))
    }
}

/// Shuts the library down when dropped: every path out after a successful `amdsmi_init`.
struct Initialised(Option<ShutDown>);

impl Drop for Initialised {
    fn drop(&mut self) {
        if let Some(shut) = self.0 {
            // SAFETY: amdsmi_shut_down(void) per the header, after a successful init.
            unsafe { shut() };
        }
    }
}

fn read(path: &OsString, major: u32) -> Reading<AmdSmiLibraryFacts> {
    // SAFETY: loading runs the library's initialisers; that is why this runs in a child process.
    let lib = match unsafe { libloading::Library::new(path) } {
        Ok(l) => l,
        Err(e) => return err(FieldErrorKind::Unknown, format!("cannot load it: {e}")),
    };
    let soname = format!("(soname major {major})");
    let (init, shut, get_version) = match (
        symbol::<Init>(&lib, "amdsmi_init", &soname),
        symbol::<ShutDown>(&lib, "amdsmi_shut_down", &soname),
        symbol::<GetVersion>(&lib, "amdsmi_get_lib_version", &soname),
    ) {
        (Ok(a), Ok(b), Ok(c)) => (a, b, c),
        (Err(e), ..) | (_, Err(e), _) | (.., Err(e)) => return Reading::Err(e),
    };
    // SAFETY: amdsmi_init(uint64_t) per the header.
    let s = unsafe { init(AMDSMI_INIT_AMD_GPUS) };
    if s != STATUS_SUCCESS {
        let mut e = status_error("amdsmi_init", s);
        e.message = Some(format!(
            "libamd_smi {soname}: {} (it needs /dev/kfd, /dev/dri/renderD* and the host's libdrm)",
            e.message.unwrap_or_default()
        ));
        return Reading::Err(e);
    }
    let up = Initialised(Some(shut));
    let mut buf = VersionBuf([0; 16]);
    // SAFETY: the buffer is larger than either layout of amdsmi_version_t.
    let s = unsafe { get_version(buf.0.as_mut_ptr().cast()) };
    if s != STATUS_SUCCESS {
        return Reading::Err(status_error("amdsmi_get_lib_version", s));
    }
    let (named, version) = version_of(major, &buf.0);
    if named != major {
        let field = if major < FIRST_MAJOR_WITHOUT_YEAR {
            "year"
        } else {
            "major"
        };
        return err(
            FieldErrorKind::Unknown,
            format!(
                "the library reports version {version} ({field} {named}) but its soname major is {major}: not read with another release's layout"
            ),
        );
    }
    let gpus = gpus(&lib, &version);
    drop(up);
    Reading::Ok(AmdSmiLibraryFacts {
        path: String::new(),
        version,
        gpus,
    })
}

/// `NULL` for the count, then a buffer of that many (bounded).
fn handles(
    call: &str,
    f: impl Fn(*mut u32, *mut *mut c_void) -> c_int,
) -> Result<Vec<*mut c_void>, FieldError> {
    let mut n: u32 = 0;
    let s = f(&mut n, std::ptr::null_mut());
    if s != STATUS_SUCCESS {
        return Err(status_error(call, s));
    }
    if n > MAX_HANDLES {
        return Err(FieldError::with_message(
            FieldErrorKind::Unknown,
            format!("{call} claims {n} handles; more than {MAX_HANDLES}, not read"),
        ));
    }
    let mut buf = vec![std::ptr::null_mut(); n as usize];
    let mut got = n;
    let s = f(&mut got, buf.as_mut_ptr());
    if s != STATUS_SUCCESS {
        return Err(status_error(call, s));
    }
    buf.truncate(got.min(n) as usize);
    Ok(buf)
}

fn gpus(lib: &libloading::Library, version: &str) -> Reading<Vec<AmdSmiGpuFacts>> {
    let (sockets, processors, bdf) = match (
        symbol::<GetSockets>(lib, "amdsmi_get_socket_handles", version),
        symbol::<GetProcessors>(lib, "amdsmi_get_processor_handles", version),
        symbol::<GetBdf>(lib, "amdsmi_get_gpu_device_bdf", version),
    ) {
        (Ok(a), Ok(b), Ok(c)) => (a, b, c),
        (Err(e), ..) | (_, Err(e), _) | (.., Err(e)) => return Reading::Err(e),
    };
    let bad_pages = symbol::<GetBadPages>(lib, "amdsmi_get_gpu_bad_page_info", version);
    // SAFETY: the signatures of the header; every buffer is as long as the count passed with it.
    let socks = match handles("amdsmi_get_socket_handles", |n, b| unsafe { sockets(n, b) }) {
        Ok(s) => s,
        Err(e) => return Reading::Err(e),
    };
    let mut out = Vec::new();
    for sock in socks {
        let procs = match handles("amdsmi_get_processor_handles", |n, b| unsafe {
            processors(sock, n, b)
        }) {
            Ok(p) => p,
            Err(e) => return Reading::Err(e),
        };
        for h in procs {
            let mut raw: u64 = 0;
            // SAFETY: amdsmi_bdf_t is one uint64_t.
            let s = unsafe { bdf(h, &mut raw) };
            if s != STATUS_SUCCESS {
                // A GPU without its address cannot be joined to sysfs's: skipped, said on stderr.
                eprintln!(
                    "node-probe: amdsmi_get_gpu_device_bdf returned amdsmi status {s}; GPU skipped"
                );
                continue;
            }
            let name = bdf_name(raw);
            let pages = match &bad_pages {
                Ok(f) => pages(*f, h),
                Err(e) => Reading::Err(e.clone()),
            };
            out.push(AmdSmiGpuFacts {
                bdf: name,
                bad_pages: pages,
            });
        }
    }
    Reading::Ok(out)
}

/// `amdsmi_bdf_t.as_uint` as sysfs names the function: domain bits 16-63, bus 8-15, device 3-7,
/// function 0-2.
fn bdf_name(raw: u64) -> String {
    format!(
        "{:04x}:{:02x}:{:02x}.{:x}",
        raw >> 16,
        (raw >> 8) & 0xff,
        (raw >> 3) & 0x1f,
        raw & 0x7
    )
}

fn pages(f: GetBadPages, h: *mut c_void) -> Reading<AmdSmiBadPagesFacts> {
    let call = "amdsmi_get_gpu_bad_page_info";
    let mut n: u32 = 0;
    // SAFETY: a NULL buffer asks for the count.
    let s = unsafe { f(h, &mut n, std::ptr::null_mut()) };
    if s != STATUS_SUCCESS {
        return Reading::Err(status_error(call, s));
    }
    if n > MAX_PAGES {
        return err(
            FieldErrorKind::Unknown,
            format!("{call} claims {n} records; more than {MAX_PAGES}, not read"),
        );
    }
    let mut recs = vec![PageRecord::default(); n as usize];
    let mut got = n;
    if n > 0 {
        // SAFETY: `recs` holds `n` records and `got` says so.
        let s = unsafe { f(h, &mut got, recs.as_mut_ptr()) };
        if s != STATUS_SUCCESS {
            return Reading::Err(status_error(call, s));
        }
    }
    let mut c = AmdSmiBadPagesFacts::default();
    for r in recs.iter().take(got.min(n) as usize) {
        match r.status {
            PAGE_RESERVED => c.reserved += 1,
            PAGE_PENDING => c.pending += 1,
            PAGE_UNRESERVABLE => c.unreservable += 1,
            other => eprintln!("node-probe: {call}: unknown page status {other}"),
        }
    }
    Reading::Ok(c)
}

#[cfg(test)]
#[path = "../../../tests/support/gate.rs"]
mod gate;

#[cfg(test)]
mod tests {
    use super::gate;
    use super::*;
    use serde_json::Value;
    use std::path::{Path, PathBuf};

    /// The wheels of tests/truth/fetch-amdsmi-wheels.sh: `AMDSMI_WHEELS`, else the user cache it fills.
    fn wheel_dir() -> PathBuf {
        if let Some(d) = std::env::var_os("AMDSMI_WHEELS") {
            return d.into();
        }
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))
            .unwrap_or_else(|| PathBuf::from(".cache"));
        cache.join("k8s-gpu-mcp/upstream/amdsmi-wheels")
    }

    /// The releases the fetch script names: one list for the script and this test.
    fn releases(truth: &Path) -> Vec<String> {
        let script = std::fs::read_to_string(truth.join("fetch-amdsmi-wheels.sh")).unwrap();
        let list = script
            .split_once("versions=(")
            .and_then(|(_, r)| r.split_once(')'))
            .expect("fetch-amdsmi-wheels.sh has versions=(...)")
            .0;
        list.split_whitespace().map(String::from).collect()
    }

    fn sig(facts: &Value, f: &str) -> String {
        facts["functions"][f].to_string()
    }

    /// Every constant, layout and signature this reader relies on, against AMD's generated ctypes of every
    /// PyPI `amdsmi` release 6.0.0..7.0.2 (`amdsmi/amdsmi_wrapper.py` in each wheel, laid out by ctypes).
    #[test]
    fn abi_matches_every_pypi_release() {
        let truth = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/truth");
        let dir = wheel_dir();
        let want = releases(&truth);
        let wheels: Vec<PathBuf> = want
            .iter()
            .map(|v| dir.join(format!("amdsmi-{v}-py3-none-any.whl")))
            .collect();
        if let Some(missing) = wheels.iter().find(|w| !w.is_file()) {
            gate::skip(&format!(
                "{} is missing: run tests/truth/fetch-amdsmi-wheels.sh (pip download of PyPI's amdsmi \
                 wheels; AMDSMI_WHEELS names another directory)",
                missing.display()
            ));
            return;
        }
        let out = match std::process::Command::new("python3")
            .arg(truth.join("amdsmi_abi.py"))
            .args(&wheels)
            .output()
        {
            Ok(o) => o,
            Err(e) => {
                gate::skip(&format!("no python3 ({e}); it reads the wheels' ctypes"));
                return;
            }
        };
        assert!(
            out.status.success(),
            "amdsmi_abi.py: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let all: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(all.as_object().unwrap().len(), want.len());
        for release in &want {
            let f = &all[release];
            assert!(f.get("error").is_none(), "{release}: {f}");
            let c = |name: &str| f["constants"][name].as_i64();
            assert_eq!(c("AMDSMI_INIT_AMD_GPUS"), Some(AMDSMI_INIT_AMD_GPUS as i64));
            for (name, v) in [
                ("AMDSMI_STATUS_SUCCESS", STATUS_SUCCESS),
                ("AMDSMI_STATUS_NOT_SUPPORTED", STATUS_NOT_SUPPORTED),
                (
                    "AMDSMI_STATUS_NOT_YET_IMPLEMENTED",
                    STATUS_NOT_YET_IMPLEMENTED,
                ),
                ("AMDSMI_STATUS_NO_PERM", STATUS_NO_PERM),
                ("AMDSMI_STATUS_NOT_INIT", STATUS_NOT_INIT),
                ("AMDSMI_MEM_PAGE_STATUS_RESERVED", PAGE_RESERVED),
                ("AMDSMI_MEM_PAGE_STATUS_PENDING", PAGE_PENDING),
                ("AMDSMI_MEM_PAGE_STATUS_UNRESERVABLE", PAGE_UNRESERVABLE),
            ] {
                assert_eq!(c(name), Some(v as i64), "{release}: {name}");
            }
            // The status is read as a C int: a 4-byte enum.
            assert_eq!(f["status_type"], std::mem::size_of::<c_int>(), "{release}");

            // amdsmi_version_t: the words version_of reads, at the offsets the release puts them.
            let fields: Vec<(String, u64)> = f["version_t"]["fields"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| {
                    (
                        x["name"].as_str().unwrap().to_string(),
                        x["offset"].as_u64().unwrap(),
                    )
                })
                .collect();
            let seven = release.starts_with('7');
            let words: &[&str] = if seven {
                &["major", "minor", "release"]
            } else {
                &["year", "major", "minor", "release"]
            };
            for (i, w) in words.iter().enumerate() {
                assert_eq!(
                    fields[i],
                    (w.to_string(), 4 * i as u64),
                    "{release}: {fields:?}"
                );
            }
            assert_eq!(fields[words.len()].0, "build", "{release}");
            assert!(
                f["version_t"]["size"].as_u64().unwrap()
                    <= std::mem::size_of::<VersionBuf>() as u64
            );
            // The layout version_of picks for this release's soname majors (ROCm 6: up to 25; 7: 26).
            let (major_here, sample) = if seven {
                (26, [26, 1, 2])
            } else {
                (24, [24, 7, 1])
            };
            let mut w = [0u32; 16];
            w[..3].copy_from_slice(&sample);
            let (named, _) = version_of(major_here, &w);
            assert_eq!(named, major_here, "{release}");

            // amdsmi_retired_page_record_t as PageRecord.
            let rec = &f["retired_page_record_t"];
            assert_eq!(rec["size"], std::mem::size_of::<PageRecord>(), "{release}");
            let offs: Vec<(&str, u64, u64)> = rec["fields"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| {
                    (
                        x["name"].as_str().unwrap(),
                        x["offset"].as_u64().unwrap(),
                        x["size"].as_u64().unwrap(),
                    )
                })
                .collect();
            assert_eq!(
                offs,
                vec![
                    (
                        "page_address",
                        std::mem::offset_of!(PageRecord, page_address) as u64,
                        8
                    ),
                    (
                        "page_size",
                        std::mem::offset_of!(PageRecord, page_size) as u64,
                        8
                    ),
                    (
                        "status",
                        std::mem::offset_of!(PageRecord, status) as u64,
                        std::mem::size_of::<c_int>() as u64
                    ),
                ],
                "{release}"
            );

            // amdsmi_bdf_t: one u64, and bdf_name decodes it as the header's bit fields do.
            assert_eq!(f["bdf_t"]["size"], 8, "{release}");
            for d in f["bdf_t"]["decoded"].as_array().unwrap() {
                let n: Vec<u64> = d
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_u64().unwrap())
                    .collect();
                assert_eq!(
                    bdf_name(n[0]),
                    format!("{:04x}:{:02x}:{:02x}.{:x}", n[1], n[2], n[3], n[4]),
                    "{release}"
                );
            }

            // Every function, with the signature declared above (`ptr:N` points at N bytes).
            for name in FUNCTIONS {
                assert!(f["functions"][name].is_object(), "{release}: no {name}");
                assert_eq!(
                    f["functions"][name]["restype"], "uint32",
                    "{release}: {name}"
                );
            }
            let expect = [
                ("amdsmi_init", r#"["uint64"]"#),
                ("amdsmi_shut_down", "[]"),
                ("amdsmi_get_lib_version", r#"["ptr:24"]"#),
                ("amdsmi_get_socket_handles", r#"["ptr:4","ptr:8"]"#),
                ("amdsmi_get_processor_handles", r#"["ptr","ptr:4","ptr:8"]"#),
                ("amdsmi_get_gpu_device_bdf", r#"["ptr","ptr:8"]"#),
                (
                    "amdsmi_get_gpu_bad_page_info",
                    r#"["ptr","ptr:4","ptr:24"]"#,
                ),
            ];
            for (name, args) in expect {
                let got = &f["functions"][name]["argtypes"];
                assert_eq!(got.to_string(), args, "{release}: {name} {}", sig(f, name));
            }
            assert_eq!(
                std::mem::size_of::<PageRecord>(),
                24,
                "ptr:24 of bad_page_info is one PageRecord"
            );
        }
    }

    #[test]
    fn each_release_names_its_soname_major_in_its_own_field() {
        let mut w = [0u32; 16];
        w[..4].copy_from_slice(&[24, 7, 1, 0]);
        assert_eq!(version_of(24, &w), (24, "24.7.1.0".to_string()));
        w[..4].copy_from_slice(&[26, 1, 0, 0]);
        assert_eq!(version_of(26, &w), (26, "26.1.0".to_string()));
        // ROCm 6's struct read as 7's would name 24, not 26.
        w[..4].copy_from_slice(&[24, 7, 1, 0]);
        assert_eq!(version_of(26, &w).0, 24);
    }
}
