//! The child side of [`super::smi`]: `node-probe __amd-smi-child <library> <soname major>` loads the host's
//! `libamd_smi`, reads it and prints one JSON line (a `Reading<AmdSmiLibraryFacts>`) on stdout. It runs
//! in its own process so that an abort, a crash or a hang in the vendor library costs only this reading.
//!
//! ABI, from the public header `include/amd_smi/amdsmi.h` (github.com/ROCm/amdsmi at rocm-6.2.0;
//! ROCm/rocm-systems `projects/amdsmi` for 7.x, `AMDSMI_LIB_VERSION_MAJOR 26`):
//! - `amdsmi_status_t` is a C enum (int); `AMDSMI_STATUS_SUCCESS` 0, `_NOT_SUPPORTED` 2,
//!   `_NOT_YET_IMPLEMENTED` 3, `_NO_PERM` 10.
//! - `amdsmi_init(uint64_t flags)` with `AMDSMI_INIT_AMD_GPUS = 1 << 1`; `amdsmi_shut_down(void)`.
//! - `amdsmi_version_t`: soname majors 24 and 25 (ROCm 6.2-6.4) are `{uint32 year, major, minor, release;
//!   const char *build}`; 26 (7.x) dropped `year`: `{uint32 major, minor, release; const char *build}`.
//! - `amdsmi_get_socket_handles(uint32_t *n, void **)`, `amdsmi_get_processor_handles(void *socket,
//!   uint32_t *n, void **)`: called with a NULL buffer for the count, then with one.
//! - `amdsmi_get_gpu_device_bdf(void *, amdsmi_bdf_t *)`: a `uint64_t` union, function bits 0-2, device
//!   3-7, bus 8-15, domain 16-63.
//! - `amdsmi_get_gpu_bad_page_info(void *, uint32_t *n, amdsmi_retired_page_record_t *)`: records of
//!   `{uint64 page_address, uint64 page_size, int status}` (24 bytes), status RESERVED 0, PENDING 1,
//!   UNRESERVABLE 2; a NULL buffer asks for the count.
//!
//! A function missing from an older library is an inline "not in this version" error on its field.

use std::ffi::{OsString, c_int, c_void};
use std::process::ExitCode;

use gpu_diag::facts::{
    AmdSmiBadPagesFacts, AmdSmiGpuFacts, AmdSmiLibraryFacts, FieldError, FieldErrorKind, Reading,
};

const AMDSMI_INIT_AMD_GPUS: u64 = 1 << 1;
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
    let kind = match s {
        2 | 3 => FieldErrorKind::NotSupported,
        10 => FieldErrorKind::NoPermission,
        _ => FieldErrorKind::Unknown,
    };
    FieldError::with_message(kind, format!("{call} returned amdsmi status {s}"))
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

fn read(path: &OsString, major: u32) -> Reading<AmdSmiLibraryFacts> {
    // SAFETY: loading runs the library's initialisers; that is why this runs in a child process.
    let lib = match unsafe { libloading::Library::new(path) } {
        Ok(l) => l,
        Err(e) => return err(FieldErrorKind::Unknown, format!("cannot load it: {e}")),
    };
    let soname = format!("{major}.x");
    let init: Init = match symbol(&lib, "amdsmi_init", &soname) {
        Ok(f) => f,
        Err(e) => return Reading::Err(e),
    };
    let version = match symbol::<GetVersion>(&lib, "amdsmi_get_lib_version", &soname) {
        Ok(get) => {
            let mut buf = VersionBuf([0; 16]);
            // SAFETY: the buffer is larger than either layout of amdsmi_version_t.
            let s = unsafe { get(buf.0.as_mut_ptr().cast()) };
            if s != 0 {
                return Reading::Err(status_error("amdsmi_get_lib_version", s));
            }
            // 24 and 25 lead with `year`; 26 and later do not.
            let w = &buf.0;
            let (maj, min, rel) = if major < 26 {
                (w[1], w[2], w[3])
            } else {
                (w[0], w[1], w[2])
            };
            if maj != major {
                return err(
                    FieldErrorKind::Unknown,
                    format!(
                        "the library reports version {maj}.{min}.{rel} but its soname major is {major}: not read with another version's layout"
                    ),
                );
            }
            format!("{maj}.{min}.{rel}")
        }
        Err(e) => return Reading::Err(e),
    };
    // SAFETY: amdsmi_init(uint64_t) per the header.
    let s = unsafe { init(AMDSMI_INIT_AMD_GPUS) };
    if s != 0 {
        let mut e = status_error("amdsmi_init", s);
        e.message = Some(format!(
            "libamd_smi {version}: {} (it needs /dev/kfd, /dev/dri/renderD* and the host's libdrm)",
            e.message.unwrap_or_default()
        ));
        return Reading::Err(e);
    }
    let gpus = gpus(&lib, &version);
    if let Ok(shut) = symbol::<ShutDown>(&lib, "amdsmi_shut_down", &version) {
        // SAFETY: amdsmi_shut_down(void) per the header, after a successful init.
        unsafe { shut() };
    }
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
    if s != 0 {
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
    if s != 0 {
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
            if s != 0 {
                // A GPU without its address cannot be joined to sysfs's: skipped, said on stderr.
                eprintln!(
                    "node-probe: amdsmi_get_gpu_device_bdf returned amdsmi status {s}; GPU skipped"
                );
                continue;
            }
            let name = format!(
                "{:04x}:{:02x}:{:02x}.{:x}",
                raw >> 16,
                (raw >> 8) & 0xff,
                (raw >> 3) & 0x1f,
                raw & 0x7
            );
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

fn pages(f: GetBadPages, h: *mut c_void) -> Reading<AmdSmiBadPagesFacts> {
    let call = "amdsmi_get_gpu_bad_page_info";
    let mut n: u32 = 0;
    // SAFETY: a NULL buffer asks for the count.
    let s = unsafe { f(h, &mut n, std::ptr::null_mut()) };
    if s != 0 {
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
        if s != 0 {
            return Reading::Err(status_error(call, s));
        }
    }
    let mut c = AmdSmiBadPagesFacts::default();
    for r in recs.iter().take(got.min(n) as usize) {
        match r.status {
            0 => c.reserved += 1,
            1 => c.pending += 1,
            2 => c.unreservable += 1,
            other => eprintln!("node-probe: {call}: unknown page status {other}"),
        }
    }
    Reading::Ok(c)
}
