//! The NVML source: find and load the driver's `libnvidia-ml`, initialise it, and collect the facts a
//! command needs. A library that cannot be found or initialised fails the run (exit 3, or 4 for missing
//! permission); anything after that is reported inline per GPU and per field.

mod collect;
mod discover;
mod errors;
mod events;
mod raw;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use gpu_diag::contract::{ErrorKind, ProbeError};
use gpu_diag::facts::{FieldError, FieldErrorKind, NodeFacts, Reading, Sections};
use nvml_wrapper::Nvml;
use nvml_wrapper::error::NvmlError;

use crate::driver_roots::Search;
use crate::options::KernelLogArgs;
use crate::vendor::{Ask, NodeWide, Share, Vendor};
use errors::LoadAttempt;

/// NVIDIA's GPUs, through NVML: the first in the probe's index, and the node's base reading.
pub struct Nvidia;

impl Vendor for Nvidia {
    /// `/dev/nvidia<N>`, `nvidiactl`, `nvidia-uvm` and the caps nodes.
    fn device_node(&self, path: &str) -> bool {
        path.starts_with("/dev/nvidia")
    }

    fn name(&self) -> &'static str {
        "nvml"
    }

    fn read(&self, ask: &Ask<'_>) -> Result<Option<Share>, ProbeError> {
        let search = Search::new(ask.host_root, ask.driver_root);
        // `--watch` listens for that long on purpose.
        let limit = ask.limit + Duration::from_secs(u64::from(ask.log.watch.unwrap_or(0)));
        let mut facts = collect_bounded(search, ask.nvml_lib, ask.sections, ask.log, limit)?;
        let gpus = std::mem::take(&mut facts.gpus);
        Ok(Some(Share {
            gpus,
            node: NodeWide::Base(Box::new(facts)),
            process_scan: None,
        }))
    }
}

/// NVML collection on its own thread, abandoned after `limit`: calls into a hung GPU or driver can block
/// for minutes (or forever, in the kernel). The thread is left behind; the process exits after printing.
fn collect_bounded(
    search: Search,
    lib: Option<&Path>,
    sections: Sections,
    log: &KernelLogArgs,
    limit: Duration,
) -> Result<NodeFacts, ProbeError> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let (lib, log) = (lib.map(Path::to_path_buf), log.clone());
    let spawned = std::thread::Builder::new()
        .name("nvml".into())
        .spawn(move || {
            let _ = tx.send(collect(&search, lib.as_deref(), sections, &log));
        });
    if let Err(e) = spawned {
        return Err(ProbeError::new(
            ErrorKind::Internal,
            format!("cannot start the NVML thread: {e}"),
        ));
    }
    match rx.recv_timeout(limit) {
        Ok(result) => result,
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            eprintln!(
                "node-probe: NVML did not answer within {} s; reporting without it",
                limit.as_secs()
            );
            Ok(hung(limit))
        }
        // The thread ended without sending: it panicked inside the NVML bindings.
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Err(ProbeError::new(
            ErrorKind::Internal,
            "NVML collection stopped unexpectedly (panic in the NVML thread; see stderr)",
        )),
    }
}

/// The facts of a node whose NVML did not answer in time: no GPUs, and why.
fn hung(limit: Duration) -> NodeFacts {
    NodeFacts {
        source: "nvml".into(),
        device_count: Reading::Err(FieldError::with_message(
            FieldErrorKind::Timeout,
            format!(
                "NVML did not answer within {} s (--nvml-timeout); a GPU or the driver is hung",
                limit.as_secs()
            ),
        )),
        ..NodeFacts::default()
    }
}

fn collect(
    search: &Search,
    lib: Option<&Path>,
    sections: Sections,
    log: &KernelLogArgs,
) -> Result<NodeFacts, ProbeError> {
    let (nvml, path) = load(search, lib)?;
    let mut facts = collect::node(&nvml, sections);
    if let Some(secs) = log.watch {
        facts.nvml_xid_events = crate::xid_watch::watch(&nvml, secs);
    }
    facts.driver.nvml_library = Some(path);
    if let Some(seconds) = log.watch {
        facts.nvml_events = Some(events::watch(&nvml, seconds));
    }
    shutdown(nvml);
    Ok(facts)
}

/// NVML loaded and initialised once for the many samples of a watch.
pub struct Session {
    nvml: Nvml,
    path: String,
}

impl Session {
    pub fn open(search: &Search, lib: Option<&Path>) -> Result<Self, ProbeError> {
        let (nvml, path) = load(search, lib)?;
        Ok(Session { nvml, path })
    }

    /// The GPUs' facts now, as `collect` gathers them.
    pub fn sample(&self, sections: Sections) -> NodeFacts {
        let mut facts = collect::node(&self.nvml, sections);
        facts.driver.nvml_library = Some(self.path.clone());
        facts
    }

    pub fn close(self) {
        shutdown(self.nvml);
    }
}

/// Dropping `Nvml` calls `nvmlShutdown` through a method that panics when the symbol is missing; a
/// library without it is leaked instead (the process is about to exit anyway).
fn shutdown(nvml: Nvml) {
    if nvml.lib().nvmlShutdown.is_ok() {
        drop(nvml);
    } else {
        std::mem::forget(nvml);
    }
}

enum InitFailure {
    /// The file could not be loaded as a library (absent, wrong architecture, not NVML): try the next.
    Load(String),
    /// NVML loaded and its init said no: this is the driver's answer, report it.
    Init(NvmlError),
}

fn init(path: &OsStr) -> Result<Nvml, InitFailure> {
    match Nvml::builder().lib_path(path).init() {
        Ok(n) => Ok(n),
        Err(NvmlError::LibloadingError(e)) => Err(InitFailure::Load(e.to_string())),
        // No nvmlInit_v2: not an NVML library.
        Err(NvmlError::FailedToLoadSymbol(m)) => Err(InitFailure::Load(m)),
        Err(e) => Err(InitFailure::Init(e)),
    }
}

/// `--nvml-lib` alone when given; else the loader's search path, then the driver roots under the host root.
fn load(search: &Search, explicit: Option<&Path>) -> Result<(Nvml, String), ProbeError> {
    let arch = std::env::consts::ARCH;
    let mut attempts = Vec::new();
    let mut tries: Vec<PathBuf> = Vec::new();
    match explicit {
        Some(p) => tries.push(p.to_path_buf()),
        None => {
            tries.push(PathBuf::from(discover::LOADER_NAME));
            let found = discover::existing(search, arch);
            if found.is_empty() {
                attempts.push(LoadAttempt {
                    path: search.described(discover::LOADER_NAME, arch, true),
                    error: "no such file".to_string(),
                });
            }
            tries.extend(found.into_iter().map(|f| f.0));
            if std::env::var_os(discover::IN_CONTAINERS_ENV).is_some() {
                let roots =
                    discover::in_process_roots(Path::new("/proc"), std::process::id(), arch);
                if roots.is_empty() {
                    attempts.push(LoadAttempt {
                        path: "/proc/*/root/{the same directories}".to_string(),
                        error: "no such file in any visible process's root".to_string(),
                    });
                }
                tries.extend(roots);
            }
        }
    }
    for path in tries {
        let shown = path.display().to_string();
        match init(path.as_os_str()) {
            Ok(nvml) => return Ok((nvml, shown)),
            Err(InitFailure::Load(error)) => attempts.push(LoadAttempt { path: shown, error }),
            Err(InitFailure::Init(e)) => return Err(errors::init_failed(&shown, &e)),
        }
    }
    // Keep the order the search used: loader first, then the host root.
    attempts.sort_by_key(|a| a.path != discover::LOADER_NAME);
    Err(errors::library_not_found(&attempts))
}
