//! The child side of [`super::hlml`]: `node-probe __hlml-child <library>` loads the host's `libhlml.so`
//! (the parent passes `/proc/self/fd/3`, the file it checked), reads it and prints one JSON line (a
//! `Reading<HlmlFacts>`) on stdout. Its own process, so that an abort, a crash or a hang in the vendor
//! library costs only this reading.
//!
//! ABI, as Intel's own ctypes binding calls it (PyPI `habana-pyhlml` 1.24.2.481, `pyhlml/main.py`,
//! `pyhlml/pyhlml_types_generated.py`), checked against 1.10..1.24 by `abi_matches_pypi_pyhlml` below and,
//! value by value on the tests' stand-in library, by `tests/truth/hlml_abi.rs`:
//! - `hlml_return_t` is a C enum (4 bytes; `HLML_RETURN.TYPE = c_uint`, `hlml_types.py:53`): SUCCESS 0,
//!   UNINITIALIZED 1, INVALID_ARGUMENT 2, NOT_SUPPORTED 3, NOT_FOUND 6, INSUFFICIENT_SIZE 7,
//!   DRIVER_NOT_LOADED 9, TIMEOUT 10, AIP_IS_LOST 15 (`pyhlml_types_generated.py:18-31`).
//! - `hlml_init(void)`, `hlml_shutdown(void)` (`main.py:29-30`, `:55-56`); `hlml_device_get_count(uint *)`
//!   (`:71-72`); `hlml_device_get_handle_by_index(uint, void **)` (`:105-106`).
//! - `hlml_device_get_pci_info(void *, hlml_pci_info_t *)`: pyhlml passes a third argument,
//!   `HL_FIELD_MAX_SIZE` (`:157-160`), that the C header does not declare (github.com/HabanaAI/gohlml
//!   `hlml.h`); passed here too, harmless either way in a register. `bus_id` is a `char[PCI_ADDR_LEN]` at
//!   offset 4 after `uint bus` (`pyhlml_types_generated.py:167-177`), 19 bytes since pyhlml 1.21
//!   (`PCI_DOMAIN_LEN` 9, `:248-249`), 15 before (`PCI_DOMAIN_LEN` 5): read at offset 4 up to its NUL
//!   within 19, from a buffer larger than any layout.
//! - `hlml_device_get_serial(void *, char *, uint len)` with `HL_FIELD_MAX_SIZE` 32 (`main.py:616-620`);
//!   `hlml_device_get_module_id(void *, uint *)` (`:635-636`).
//! - `hlml_get_hlml_version(char *, uint)`, `hlml_get_driver_version(char *, uint)` with `VERSION_MAX_LEN`
//!   128 (`main.py:814-818`, `:829-833`; `hlml_types.py:41`).
//! - `hlml_device_get_total_ecc_errors(void *, uint error_type, uint counter_type, long long *)`
//!   (`main.py:428-431`; the header says `unsigned long long`): error type CORRECTED 0, UNCORRECTED 1,
//!   counter VOLATILE 0, AGGREGATE 1 (`pyhlml_types_generated.py:79-93`).
//! - `hlml_device_get_replaced_rows_pending_status(void *, uint *)` (`main.py:1099-1102`).
//! - `hlml_get_mac_addr_info(void *, uint64_t mask[2], uint64_t ext_mask[2])`: the device's ports and its
//!   external ones as bit masks (`main.py:764-771`, `PORTS_ARR_SIZE` 2); `hlml_nic_get_link(void *,
//!   uint32_t port, bool *up)` (`main.py:782-788`), the `bool` one byte (`ctypes.c_bool`), read as a byte.
//! - `hlml_device_get_current_clocks_throttle_reasons(void *, unsigned long long *)` (`main.py:729-733`):
//!   a mask, POWER `1 << 0`, THERMAL `1 << 1` (`pyhlml_types_generated.py:264-265`).
//!
//! A function missing from an older library is an inline "not in this version" error on its field.
//! Once `hlml_init` succeeded, `hlml_shutdown` runs on every path out. Every buffer handed to the library
//! is twice the length it is told, and a string must end within the told length.

use std::ffi::{OsString, c_int, c_uint, c_void};
use std::os::fd::FromRawFd;
use std::process::ExitCode;

use gpu_diag::facts::{
    FieldError, FieldErrorKind, HlmlDeviceFacts, HlmlEccFacts, HlmlFacts, HlmlNicPortFacts, Reading,
};

const SUCCESS: c_int = 0;
const ERROR_UNINITIALIZED: c_int = 1;
const ERROR_INVALID_ARGUMENT: c_int = 2;
const ERROR_NOT_SUPPORTED: c_int = 3;
const ERROR_NOT_FOUND: c_int = 6;
const ERROR_INSUFFICIENT_SIZE: c_int = 7;
const ERROR_DRIVER_NOT_LOADED: c_int = 9;
const ERROR_TIMEOUT: c_int = 10;
const ERROR_AIP_IS_LOST: c_int = 15;
/// `HLML_MEMORY_ERROR_TYPE_*` and `HLML_*_ECC`.
const ECC_CORRECTED: c_uint = 0;
const ECC_UNCORRECTED: c_uint = 1;
const ECC_VOLATILE: c_uint = 0;
const ECC_AGGREGATE: c_uint = 1;
/// `HL_FIELD_MAX_SIZE`, `VERSION_MAX_LEN`, `PCI_ADDR_LEN` (pyhlml 1.21+; 15 before).
const HL_FIELD_MAX_SIZE: usize = 32;
const VERSION_MAX_LEN: usize = 128;
const PCI_ADDR_LEN: usize = 19;
/// `bus_id`'s offset in `hlml_pci_info_t`: after `unsigned int bus`.
const BUS_ID_OFFSET: usize = 4;
/// A node has 8 Gaudi devices; more is not a count to believe.
const MAX_DEVICES: c_uint = 64;
/// Every function read, for the truth test.
#[cfg(test)]
const FUNCTIONS: &[&str] = &[
    "hlml_init",
    "hlml_shutdown",
    "hlml_device_get_count",
    "hlml_device_get_handle_by_index",
    "hlml_device_get_pci_info",
    "hlml_device_get_serial",
    "hlml_device_get_module_id",
    "hlml_get_hlml_version",
    "hlml_get_driver_version",
    "hlml_device_get_total_ecc_errors",
    "hlml_device_get_replaced_rows_pending_status",
    "hlml_get_mac_addr_info",
    "hlml_nic_get_link",
    "hlml_device_get_current_clocks_throttle_reasons",
];

type Plain = unsafe extern "C" fn() -> c_int;
type GetCount = unsafe extern "C" fn(*mut c_uint) -> c_int;
type GetHandle = unsafe extern "C" fn(c_uint, *mut *mut c_void) -> c_int;
type GetPci = unsafe extern "C" fn(*mut c_void, *mut u8, c_uint) -> c_int;
type GetText = unsafe extern "C" fn(*mut c_void, *mut u8, c_uint) -> c_int;
type GetUint = unsafe extern "C" fn(*mut c_void, *mut c_uint) -> c_int;
type GetLibText = unsafe extern "C" fn(*mut u8, c_uint) -> c_int;
type GetEcc = unsafe extern "C" fn(*mut c_void, c_uint, c_uint, *mut i64) -> c_int;
type GetMasks = unsafe extern "C" fn(*mut c_void, *mut u64, *mut u64) -> c_int;
type GetLink = unsafe extern "C" fn(*mut c_void, u32, *mut u8) -> c_int;
type GetU64 = unsafe extern "C" fn(*mut c_void, *mut u64) -> c_int;
/// `PORTS_ARR_SIZE`: the port masks' words (128 ports).
const PORTS_ARR_SIZE: usize = 2;

/// `hlml_pci_info_t` read into a buffer larger than any release's (84 bytes in 1.24).
#[repr(C, align(8))]
struct PciBuf([u8; 256]);

pub fn main(args: &[OsString]) -> ExitCode {
    use std::io::Write;
    // The reading goes to the stdout this process was given; whatever the library prints on its stdout
    // goes to stderr instead, so a chatty library cannot break the one JSON line.
    // SAFETY: dup and dup2 on this process's own standard descriptors, before any library is loaded.
    let out = unsafe {
        let saved = libc::dup(1);
        if saved >= 0 && libc::dup2(2, 1) >= 0 {
            Some(std::fs::File::from_raw_fd(saved))
        } else {
            None
        }
    };
    let reading = match args.first() {
        Some(path) => read(path),
        None => err(
            FieldErrorKind::Unknown,
            "usage: __hlml-child <library>".into(),
        ),
    };
    let line = match serde_json::to_string(&reading) {
        Ok(s) => s + "\n",
        Err(e) => {
            eprintln!("node-probe: {e}");
            return ExitCode::from(1);
        }
    };
    let written = match out {
        Some(mut f) => f.write_all(line.as_bytes()).and_then(|()| f.flush()),
        None => std::io::stdout().write_all(line.as_bytes()),
    };
    match written {
        Ok(()) => ExitCode::SUCCESS,
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
        ERROR_UNINITIALIZED => (FieldErrorKind::Unknown, " (UNINITIALIZED)"),
        ERROR_INVALID_ARGUMENT => (FieldErrorKind::Unknown, " (INVALID_ARGUMENT)"),
        ERROR_NOT_SUPPORTED => (FieldErrorKind::NotSupported, " (NOT_SUPPORTED)"),
        ERROR_NOT_FOUND => (FieldErrorKind::NotFound, " (NOT_FOUND)"),
        ERROR_INSUFFICIENT_SIZE => (FieldErrorKind::Unknown, " (INSUFFICIENT_SIZE)"),
        ERROR_DRIVER_NOT_LOADED => (FieldErrorKind::NotFound, " (DRIVER_NOT_LOADED)"),
        ERROR_TIMEOUT => (FieldErrorKind::Timeout, " (TIMEOUT)"),
        ERROR_AIP_IS_LOST => (FieldErrorKind::GpuIsLost, " (AIP_IS_LOST)"),
        _ => (FieldErrorKind::Unknown, ""),
    };
    FieldError::with_message(kind, format!("{call} returned hlml status {s}{name}"))
}

/// A symbol of the library, or the inline error saying this version lacks it.
fn symbol<T: Copy>(lib: &libloading::Library, name: &str) -> Result<T, FieldError> {
    // SAFETY: `T` is the function type of `name` as the module's notes give it.
    unsafe { lib.get::<T>(name.as_bytes()) }
        .map(|s| *s)
        .map_err(|_| {
            FieldError::with_message(
                FieldErrorKind::NotSupported,
                format!("{name} is not in this libhlml version"),
            )
        })
}

/// Shuts the library down when dropped: every path out after a successful `hlml_init`.
struct Initialised(Plain);

impl Drop for Initialised {
    fn drop(&mut self) {
        // SAFETY: hlml_shutdown(void), after a successful init.
        unsafe { (self.0)() };
    }
}

/// The text a call wrote into `buf` (told `told` bytes): up to its NUL, which must lie within `told`;
/// control characters are refused.
fn c_text(call: &str, buf: &[u8], told: usize) -> Result<String, FieldError> {
    let bad =
        |why: &str| FieldError::with_message(FieldErrorKind::Unknown, format!("{call}: {why}"));
    let end = buf[..told.min(buf.len())]
        .iter()
        .position(|&b| b == 0)
        .ok_or_else(|| bad(&format!("no NUL within its {told} bytes")))?;
    let s = std::str::from_utf8(&buf[..end]).map_err(|_| bad("not UTF-8"))?;
    if s.chars().any(char::is_control) {
        return Err(bad("control characters in its text"));
    }
    Ok(s.trim().to_string())
}

fn text_call(call: &str, len: usize, f: impl FnOnce(*mut u8, c_uint) -> c_int) -> Reading<String> {
    let mut buf = vec![0u8; 2 * len];
    let s = f(buf.as_mut_ptr(), len as c_uint);
    if s != SUCCESS {
        return Reading::Err(status_error(call, s));
    }
    c_text(call, &buf, len).into()
}

fn read(path: &OsString) -> Reading<HlmlFacts> {
    // SAFETY: loading runs the library's initialisers; that is why this runs in a child process.
    let lib = match unsafe { libloading::Library::new(path) } {
        Ok(l) => l,
        Err(e) => return err(FieldErrorKind::Unknown, format!("cannot load it: {e}")),
    };
    let (init, shut) = match (
        symbol::<Plain>(&lib, "hlml_init"),
        symbol::<Plain>(&lib, "hlml_shutdown"),
    ) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return Reading::Err(e),
    };
    // SAFETY: hlml_init(void).
    let s = unsafe { init() };
    if s != SUCCESS {
        let mut e = status_error("hlml_init", s);
        e.message = Some(format!(
            "{} (it opens the habanalabs devices, /dev/accel/accel*)",
            e.message.unwrap_or_default()
        ));
        return Reading::Err(e);
    }
    let up = Initialised(shut);
    let lib_text = |name: &str| match symbol::<GetLibText>(&lib, name) {
        // SAFETY: (char *, uint) with a buffer twice the length told.
        Ok(f) => text_call(name, VERSION_MAX_LEN, |b, n| unsafe { f(b, n) }),
        Err(e) => Reading::Err(e),
    };
    let version = lib_text("hlml_get_hlml_version");
    let driver_version = lib_text("hlml_get_driver_version");
    let devices = devices(&lib);
    drop(up);
    Reading::Ok(HlmlFacts {
        path: String::new(),
        version,
        driver_version,
        devices,
    })
}

fn devices(lib: &libloading::Library) -> Reading<Vec<HlmlDeviceFacts>> {
    let (count, handle, pci) = match (
        symbol::<GetCount>(lib, "hlml_device_get_count"),
        symbol::<GetHandle>(lib, "hlml_device_get_handle_by_index"),
        symbol::<GetPci>(lib, "hlml_device_get_pci_info"),
    ) {
        (Ok(a), Ok(b), Ok(c)) => (a, b, c),
        (Err(e), ..) | (_, Err(e), _) | (.., Err(e)) => return Reading::Err(e),
    };
    let serial = symbol::<GetText>(lib, "hlml_device_get_serial");
    let module = symbol::<GetUint>(lib, "hlml_device_get_module_id");
    let ecc = symbol::<GetEcc>(lib, "hlml_device_get_total_ecc_errors");
    let pending = symbol::<GetUint>(lib, "hlml_device_get_replaced_rows_pending_status");
    let throttle = symbol::<GetU64>(lib, "hlml_device_get_current_clocks_throttle_reasons");
    let nic = match (
        symbol::<GetMasks>(lib, "hlml_get_mac_addr_info"),
        symbol::<GetLink>(lib, "hlml_nic_get_link"),
    ) {
        (Ok(a), Ok(b)) => Ok((a, b)),
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    let mut n: c_uint = 0;
    // SAFETY: hlml_device_get_count(uint *).
    let s = unsafe { count(&mut n) };
    if s != SUCCESS {
        return Reading::Err(status_error("hlml_device_get_count", s));
    }
    if n > MAX_DEVICES {
        return err(
            FieldErrorKind::Unknown,
            format!("hlml_device_get_count claims {n} devices; more than {MAX_DEVICES}, not read"),
        );
    }
    let mut out = Vec::new();
    for i in 0..n {
        let mut h: *mut c_void = std::ptr::null_mut();
        // SAFETY: (uint, void **).
        let s = unsafe { handle(i, &mut h) };
        if s != SUCCESS {
            // A device without its handle cannot be joined to sysfs's: skipped, said on stderr.
            eprintln!(
                "node-probe: hlml_device_get_handle_by_index({i}) returned hlml status {s}; device skipped"
            );
            continue;
        }
        let mut buf = PciBuf([0; 256]);
        // SAFETY: the buffer is larger than any release's hlml_pci_info_t; the third argument as pyhlml
        // passes it (see the module's notes).
        let s = unsafe { pci(h, buf.0.as_mut_ptr(), HL_FIELD_MAX_SIZE as c_uint) };
        let bus_id = if s == SUCCESS {
            c_text(
                "hlml_device_get_pci_info",
                &buf.0[BUS_ID_OFFSET..],
                PCI_ADDR_LEN,
            )
            .map_err(|e| e.message.unwrap_or_default())
            .and_then(|b| {
                gpu_diag::pci::normalize_bus_id(&b).ok_or_else(|| {
                    format!("hlml_device_get_pci_info: bus_id {b:?} is not a PCI address")
                })
            })
        } else {
            Err(status_error("hlml_device_get_pci_info", s)
                .message
                .unwrap_or_default())
        };
        let bus_id = match bus_id {
            Ok(b) => b,
            Err(why) => {
                eprintln!("node-probe: device {i}: {why}; device skipped");
                continue;
            }
        };
        let uint = |f: &Result<GetUint, FieldError>, call: &str| -> Reading<c_uint> {
            match f {
                Ok(f) => {
                    let mut v: c_uint = 0;
                    // SAFETY: (void *, uint *).
                    let s = unsafe { f(h, &mut v) };
                    if s == SUCCESS {
                        Reading::Ok(v)
                    } else {
                        Reading::Err(status_error(call, s))
                    }
                }
                Err(e) => Reading::Err(e.clone()),
            }
        };
        let ecc_count = |kind: c_uint, counter: c_uint| -> Reading<u64> {
            let call = "hlml_device_get_total_ecc_errors";
            match &ecc {
                Ok(f) => {
                    let mut v: i64 = 0;
                    // SAFETY: (void *, uint, uint, long long *).
                    let s = unsafe { f(h, kind, counter, &mut v) };
                    if s != SUCCESS {
                        return Reading::Err(status_error(call, s));
                    }
                    u64::try_from(v).map(Reading::Ok).unwrap_or_else(|_| {
                        err(
                            FieldErrorKind::Unknown,
                            format!("{call}: a negative count ({v})"),
                        )
                    })
                }
                Err(e) => Reading::Err(e.clone()),
            }
        };
        let serial = match &serial {
            Ok(f) => match text_call("hlml_device_get_serial", HL_FIELD_MAX_SIZE, |b, n| {
                // SAFETY: (void *, char *, uint) with a buffer twice the length told.
                unsafe { f(h, b, n) }
            }) {
                Reading::Ok(s) if s.is_empty() => err(
                    FieldErrorKind::NotFound,
                    "hlml_device_get_serial: an empty serial".into(),
                ),
                r => r,
            },
            Err(e) => Reading::Err(e.clone()),
        };
        out.push(HlmlDeviceFacts {
            index: i,
            bus_id,
            serial,
            module_id: uint(&module, "hlml_device_get_module_id"),
            ecc: HlmlEccFacts {
                corrected_volatile: ecc_count(ECC_CORRECTED, ECC_VOLATILE),
                uncorrected_volatile: ecc_count(ECC_UNCORRECTED, ECC_VOLATILE),
                corrected_aggregate: ecc_count(ECC_CORRECTED, ECC_AGGREGATE),
                uncorrected_aggregate: ecc_count(ECC_UNCORRECTED, ECC_AGGREGATE),
            },
            replaced_rows_pending: match uint(
                &pending,
                "hlml_device_get_replaced_rows_pending_status",
            ) {
                Reading::Ok(v) => Reading::Ok(v != 0),
                Reading::Err(e) => Reading::Err(e),
            },
            nic_ports: match &nic {
                Ok((masks, link)) => ports(h, *masks, *link),
                Err(e) => Reading::Err(e.clone()),
            },
            clocks_throttle_reasons: match &throttle {
                Ok(f) => {
                    // Room for twice the told 8 bytes.
                    let mut v = [0u64; 2];
                    // SAFETY: (void *, unsigned long long *).
                    let s = unsafe { f(h, v.as_mut_ptr()) };
                    if s == SUCCESS {
                        Reading::Ok(v[0])
                    } else {
                        Reading::Err(status_error(
                            "hlml_device_get_current_clocks_throttle_reasons",
                            s,
                        ))
                    }
                }
                Err(e) => Reading::Err(e.clone()),
            },
        });
    }
    Reading::Ok(out)
}

/// The device's ports from its masks, each with its link.
fn ports(h: *mut c_void, masks: GetMasks, link: GetLink) -> Reading<Vec<HlmlNicPortFacts>> {
    // Twice the words the library is meant to write.
    let mut mask = [0u64; 2 * PORTS_ARR_SIZE];
    let mut ext = [0u64; 2 * PORTS_ARR_SIZE];
    // SAFETY: (void *, uint64_t[2], uint64_t[2]) with room for twice that.
    let s = unsafe { masks(h, mask.as_mut_ptr(), ext.as_mut_ptr()) };
    if s != SUCCESS {
        return Reading::Err(status_error("hlml_get_mac_addr_info", s));
    }
    let mut out = Vec::new();
    for port in 0..(64 * PORTS_ARR_SIZE) as u32 {
        let (w, b) = ((port / 64) as usize, port % 64);
        if mask[w] >> b & 1 == 0 {
            continue;
        }
        let mut up = [0u8; 8];
        // SAFETY: (void *, uint32_t, bool *) with room for more than one byte.
        let s = unsafe { link(h, port, up.as_mut_ptr()) };
        out.push(HlmlNicPortFacts {
            port,
            external: ext[w] >> b & 1 == 1,
            up: if s == SUCCESS {
                Reading::Ok(up[0] != 0)
            } else {
                Reading::Err(status_error("hlml_nic_get_link", s))
            },
        });
    }
    Reading::Ok(out)
}

// Also loaded by amd/smi_child.rs (a peer module this one may not name): state-free, harmless.
#[cfg(test)]
#[allow(clippy::duplicate_mod)]
#[path = "../../../tests/support/gate.rs"]
mod gate;

#[cfg(test)]
mod tests {
    use super::gate;
    use super::*;
    use serde_json::Value;
    use std::path::{Path, PathBuf};

    /// The wheels of tests/truth/fetch-hlml-wheels.sh: `HLML_WHEELS`, else the user cache it fills.
    pub fn wheel_dir() -> PathBuf {
        if let Some(d) = std::env::var_os("HLML_WHEELS") {
            return d.into();
        }
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))
            .unwrap_or_else(|| PathBuf::from(".cache"));
        cache.join("k8s-gpu-mcp/upstream/hlml-wheels")
    }

    /// Every constant, layout and call this reader relies on, against how each PyPI `habana-pyhlml`
    /// release of tests/truth/fetch-hlml-wheels.sh calls libhlml (tests/truth/hlml_abi.py `abi`: pyhlml's
    /// own functions run against a stub library that records each argument's ctypes type).
    #[test]
    fn abi_matches_pypi_pyhlml() {
        let truth = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/truth");
        let script = std::fs::read_to_string(truth.join("fetch-hlml-wheels.sh")).unwrap();
        let want: Vec<String> = script
            .split_once("versions=(")
            .and_then(|(_, r)| r.split_once(')'))
            .expect("fetch-hlml-wheels.sh has versions=(...)")
            .0
            .split_whitespace()
            .map(String::from)
            .collect();
        let dir = wheel_dir();
        let wheels: Vec<PathBuf> = want
            .iter()
            .map(|v| dir.join(format!("habana_pyhlml-{v}-py3-none-any.whl")))
            .collect();
        if let Some(missing) = wheels.iter().find(|w| !w.is_file()) {
            gate::skip(&format!(
                "{} is missing: run tests/truth/fetch-hlml-wheels.sh (pip download of PyPI's \
                 habana-pyhlml wheels; HLML_WHEELS names another directory)",
                missing.display()
            ));
            return;
        }
        let out = match std::process::Command::new("python3")
            .arg(truth.join("hlml_abi.py"))
            .arg("abi")
            .args(&wheels)
            .output()
        {
            Ok(o) => o,
            Err(e) => {
                gate::skip(&format!("no python3 ({e}); it runs pyhlml"));
                return;
            }
        };
        assert!(
            out.status.success(),
            "hlml_abi.py: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let all: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(all.as_object().unwrap().len(), want.len());
        for release in &want {
            let f = &all[release];
            assert!(f.get("error").is_none(), "{release}: {f}");
            assert_eq!(
                f["default_path"], "/usr/lib/habanalabs/libhlml.so",
                "{release}: where gaudi/hlml.rs looks first"
            );
            let c = |name: &str| f["constants"][name].as_i64();
            for (name, v) in [
                ("HLML_SUCCESS", SUCCESS),
                ("HLML_ERROR_UNINITIALIZED", ERROR_UNINITIALIZED),
                ("HLML_ERROR_INVALID_ARGUMENT", ERROR_INVALID_ARGUMENT),
                ("HLML_ERROR_NOT_SUPPORTED", ERROR_NOT_SUPPORTED),
                ("HLML_ERROR_NOT_FOUND", ERROR_NOT_FOUND),
                ("HLML_ERROR_INSUFFICIENT_SIZE", ERROR_INSUFFICIENT_SIZE),
                ("HLML_ERROR_DRIVER_NOT_LOADED", ERROR_DRIVER_NOT_LOADED),
                ("HLML_ERROR_TIMEOUT", ERROR_TIMEOUT),
                ("HLML_ERROR_AIP_IS_LOST", ERROR_AIP_IS_LOST),
            ] {
                assert_eq!(c(name), Some(v as i64), "{release}: {name}");
            }
            for (name, v) in [
                ("HLML_MEMORY_ERROR_TYPE_CORRECTED", ECC_CORRECTED),
                ("HLML_MEMORY_ERROR_TYPE_UNCORRECTED", ECC_UNCORRECTED),
                ("HLML_VOLATILE_ECC", ECC_VOLATILE),
                ("HLML_AGGREGATE_ECC", ECC_AGGREGATE),
            ] {
                assert_eq!(c(name), Some(v as i64), "{release}: {name}");
            }
            for (name, v) in [
                (
                    "HLML_CLOCKS_THROTTLE_REASON_POWER",
                    gpu_diag::facts::HLML_THROTTLE_POWER,
                ),
                (
                    "HLML_CLOCKS_THROTTLE_REASON_THERMAL",
                    gpu_diag::facts::HLML_THROTTLE_THERMAL,
                ),
            ] {
                assert_eq!(c(name), Some(v as i64), "{release}: {name}");
            }
            assert_eq!(c("HL_FIELD_MAX_SIZE"), Some(HL_FIELD_MAX_SIZE as i64));
            assert_eq!(c("VERSION_MAX_LEN"), Some(VERSION_MAX_LEN as i64));
            // The status is read as a C int: a 4-byte enum.
            assert_eq!(f["return_size"], std::mem::size_of::<c_int>(), "{release}");
            // hlml_pci_info_t: bus_id where it is read, no longer than it is read, the whole struct
            // inside the buffer handed over (15 bytes before 1.21, 19 after).
            let pci = &f["pci_info"];
            assert_eq!(pci["bus_id_offset"], BUS_ID_OFFSET, "{release}");
            let bus_len = pci["bus_id_size"].as_u64().unwrap();
            assert_eq!(c("PCI_ADDR_LEN"), Some(bus_len as i64), "{release}");
            assert!(bus_len <= PCI_ADDR_LEN as u64, "{release}: {pci}");
            let size = pci["size"].as_u64().unwrap();
            assert!(size <= std::mem::size_of::<PciBuf>() as u64, "{release}");
            // Every call, with the arguments declared above (`ptr:N`: to N bytes; `int` a C int).
            let expect = [
                ("hlml_init", "[]".to_string()),
                ("hlml_shutdown", "[]".into()),
                ("hlml_device_get_count", r#"["ptr:4"]"#.into()),
                (
                    "hlml_device_get_handle_by_index",
                    r#"["int","ptr:8"]"#.into(),
                ),
                (
                    "hlml_device_get_pci_info",
                    format!(r#"["ptr","ptr:{size}","uint32"]"#),
                ),
                ("hlml_device_get_serial", r#"["ptr","ptr:32","int"]"#.into()),
                ("hlml_device_get_module_id", r#"["ptr","ptr:4"]"#.into()),
                ("hlml_get_hlml_version", r#"["buf:128","uint32"]"#.into()),
                ("hlml_get_driver_version", r#"["buf:128","uint32"]"#.into()),
                (
                    "hlml_device_get_total_ecc_errors",
                    r#"["ptr","int","int","ptr:8"]"#.into(),
                ),
                (
                    "hlml_device_get_replaced_rows_pending_status",
                    r#"["ptr","ptr:4"]"#.into(),
                ),
                (
                    "hlml_get_mac_addr_info",
                    format!(r#"["ptr","ptr:{0}","ptr:{0}"]"#, 8 * PORTS_ARR_SIZE),
                ),
                ("hlml_nic_get_link", r#"["ptr","uint32","ptr:1"]"#.into()),
                (
                    "hlml_device_get_current_clocks_throttle_reasons",
                    r#"["ptr","ptr:8"]"#.into(),
                ),
            ];
            assert_eq!(expect.len(), FUNCTIONS.len());
            for (name, args) in &expect {
                assert!(FUNCTIONS.contains(name), "{name}");
                let got = &f["calls"][name];
                assert_eq!(got.to_string(), *args, "{release}: {name}");
            }
        }
        // The types this reader declares, against those sizes.
        assert_eq!(std::mem::size_of::<c_uint>(), 4);
        assert_eq!(std::mem::size_of::<*mut c_void>(), 8);
        assert_eq!(std::mem::size_of::<i64>(), 8);
    }

    #[test]
    fn texts_end_within_their_told_length() {
        let mut b = vec![0u8; 64];
        b[..5].copy_from_slice(b"AN123");
        assert_eq!(c_text("x", &b, 32).unwrap(), "AN123");
        let full = vec![b'X'; 64];
        let e = c_text("x", &full, 32).unwrap_err();
        assert!(e.message.unwrap().contains("no NUL within its 32 bytes"));
        let mut ctl = vec![0u8; 64];
        ctl[..3].copy_from_slice(b"a\x1bb");
        assert!(c_text("x", &ctl, 32).is_err());
    }
}
