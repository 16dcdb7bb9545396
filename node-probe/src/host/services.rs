//! Which GPU services run on the host (Fabric Manager, persistenced, DCGM), from `proc/*/comm`.

use std::path::Path;

use gpu_diag::facts::{Reading, ServiceFacts};

use super::capped::{io_error, read_text_max};

/// GPU services and the process name (`/proc/<pid>/comm`, at most 15 bytes) each runs as.
pub const SERVICES: &[(&str, &str)] = &[
    ("nvidia-fabricmanager", "nv-fabricmanager"),
    ("nvidia-persistenced", "nvidia-persistenced"),
    ("nv-hostengine", "nv-hostengine"),
    ("dcgm-exporter", "dcgm-exporter"),
];

/// Which GPU services have a running process, from `proc/*/comm`.
pub fn read_services(root: &Path) -> Vec<ServiceFacts> {
    let comms = match std::fs::read_dir(root.join("proc")) {
        Ok(rd) => Ok(rd
            .filter_map(Result::ok)
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .bytes()
                    .all(|b| b.is_ascii_digit())
            })
            .filter_map(|e| read_text_max(&e.path().join("comm"), 4096).ok())
            .map(|c| c.trim_end().to_string())
            .collect::<Vec<_>>()),
        Err(e) => Err(io_error(&e)),
    };
    SERVICES
        .iter()
        .map(|(name, process)| {
            // The kernel keeps 15 bytes of a process name.
            let comm: String = process.chars().take(15).collect();
            ServiceFacts {
                name: name.to_string(),
                running: match &comms {
                    Ok(list) => Reading::Ok(list.contains(&comm)),
                    Err(e) => Reading::Err(e.clone()),
                },
            }
        })
        .collect()
}
