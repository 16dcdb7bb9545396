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

use gpu_diag::contract::ProbeError;
use gpu_diag::facts::{NodeFacts, Sections};
use nvml_wrapper::Nvml;
use nvml_wrapper::error::NvmlError;

use crate::driver_roots::Search;
use crate::options::KernelLogArgs;
use errors::LoadAttempt;

pub fn collect(
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
