//! Intel's `libhlml.so` where the node has it: its version, the driver version it reads and, per device
//! joined to sysfs's by PCI address, the board serial, module id, ECC totals, pending row replacements and
//! its NIC ports' links.
//!
//! What it adds to sysfs: the serial number, which the habanalabs driver does not show in sysfs but
//! Habana's device plugin names each `habana.ai/gaudi` device by, so a pod's devices are attributed
//! exactly only where it was read (`src/attribution/device.rs`), and a reset is verified on it
//! (`src/operator/reset/gaudi.rs`). The module id is read too, as a check on the join: a device whose
//! module id differs from sysfs's gets no serial.
//!
//! Read as `amd/smi.rs` reads libamd_smi: in a child (`node-probe __hlml-child`, `hlml_child.rs`, run by
//! `host/lib_child.rs`) with an empty environment, killed at the deadline, its one JSON line parsed capped;
//! loaded only if it, every directory on the way to it and every library it needs from its own directory
//! are root's and writable by neither group nor others (`host/lib_trust.rs`), by the descriptor that check
//! opened. Anything else is an inline error on `hlml`; a node without the library answers as before.

use std::path::Path;
use std::time::Instant;

use gpu_diag::facts::{FieldError, FieldErrorKind, GpuFacts, HlmlFacts, Reading};

use crate::host::lib_child;
use crate::host::root::resolve_file;

/// The hidden first argument that makes node-probe the library's reader.
pub const CHILD_ARG: &str = "__hlml-child";

/// Where the library is looked for: pyhlml's default path first (`pyhlml/hlml_lib.py:9`, where Intel's
/// `habanalabs-firmware-tools` package installs it), then the usual library directories.
const PATHS: &[&str] = &[
    "usr/lib/habanalabs/libhlml.so",
    "usr/lib/x86_64-linux-gnu/libhlml.so",
    "usr/lib/aarch64-linux-gnu/libhlml.so",
    "usr/lib64/libhlml.so",
    "usr/lib/libhlml.so",
];

/// The first library of [`PATHS`] under the host root: its path as the host names it.
pub fn find(root: &Path) -> Option<&'static str> {
    PATHS
        .iter()
        .copied()
        .find(|rel| resolve_file(root, rel).is_some())
}

/// Start reading the node's library; `None` where the node has none (then `hlml` stays absent), or the
/// inline error that stopped it before it ran.
pub enum Started {
    None,
    Failed(Reading<HlmlFacts>),
    Running(Pending),
}

/// A reading under way.
pub struct Pending(Box<lib_child::Pending>);

pub fn start(root: &Path) -> Started {
    let Some(rel) = find(root) else {
        return Started::None;
    };
    let host_path = format!("/{rel}");
    // No library is dlopen'd by soname that we know of; its DT_NEEDED from its own directory are checked.
    let chain = match crate::host::lib_trust::chain(root, Path::new(rel), &[], &[]) {
        Ok(c) => c,
        Err(why) => {
            return Started::Failed(Reading::Err(FieldError::with_message(
                FieldErrorKind::NoPermission,
                format!("{host_path}: not loaded, {why}"),
            )));
        }
    };
    match lib_child::start("libhlml", CHILD_ARG, &host_path, &chain, &[]) {
        Ok(p) => Started::Running(Pending(p)),
        Err(e) => Started::Failed(Reading::Err(e)),
    }
}

impl Pending {
    /// The reading, or an inline error once `deadline` passed (the child killed).
    pub fn finish(self, deadline: Instant) -> Reading<HlmlFacts> {
        self.0
            .finish(deadline, |f: &mut HlmlFacts, path| f.path = path)
    }
}

/// Fill each sysfs device's serial from the library's device at the same PCI address. Where the library
/// was not read, the serials stay as sysfs left them (`hlml` says why).
pub fn join(gpus: &mut [GpuFacts], hlml: &Reading<HlmlFacts>) {
    let Reading::Ok(lib) = hlml else { return };
    for g in gpus.iter_mut() {
        let (Some(h), Reading::Ok(bdf)) = (&g.gaudi, &g.pci_bus_id) else {
            continue;
        };
        g.serial = match &lib.devices {
            Reading::Err(e) => Reading::Err(e.clone()),
            Reading::Ok(devs) => match devs.iter().find(|d| &d.bus_id == bdf) {
                None => Reading::Err(FieldError::with_message(
                    FieldErrorKind::NotFound,
                    format!("{} lists no device at {bdf}", lib.path),
                )),
                Some(d) => match (&d.module_id, &h.module_id) {
                    (Reading::Ok(a), Reading::Ok(b)) if a != b => {
                        Reading::Err(FieldError::with_message(
                            FieldErrorKind::Unknown,
                            format!(
                                "{}: the device at {bdf} has module id {a}, sysfs's {b}: its serial is not taken",
                                lib.path
                            ),
                        ))
                    }
                    _ => d.serial.clone(),
                },
            },
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gpu_diag::facts::{GaudiGpuFacts, HlmlDeviceFacts};

    fn gpu(bdf: &str, module: u32) -> GpuFacts {
        GpuFacts {
            pci_bus_id: Reading::Ok(bdf.into()),
            serial: Reading::Err(FieldError::new(FieldErrorKind::NotSupported)),
            gaudi: Some(GaudiGpuFacts {
                module_id: Reading::Ok(module),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn dev(bdf: &str, serial: &str, module: u32) -> HlmlDeviceFacts {
        HlmlDeviceFacts {
            bus_id: bdf.into(),
            serial: Reading::Ok(serial.into()),
            module_id: Reading::Ok(module),
            ..Default::default()
        }
    }

    #[test]
    fn serials_join_by_address_and_module_id_guards_the_join() {
        let mut gpus = vec![
            gpu("0000:19:00.0", 7),
            gpu("0000:1a:00.0", 6),
            gpu("0000:33:00.0", 5),
        ];
        let lib = Reading::Ok(HlmlFacts {
            path: "/usr/lib/habanalabs/libhlml.so".into(),
            devices: Reading::Ok(vec![
                dev("0000:1a:00.0", "AN1", 6),
                dev("0000:19:00.0", "AN0", 7),
                dev("0000:33:00.0", "AN2", 4),
            ]),
            ..Default::default()
        });
        join(&mut gpus, &lib);
        assert_eq!(gpus[0].serial, Reading::Ok("AN0".into()));
        assert_eq!(gpus[1].serial, Reading::Ok("AN1".into()));
        let e = gpus[2].serial.err().unwrap();
        assert!(
            e.message
                .as_deref()
                .unwrap()
                .contains("module id 4, sysfs's 5"),
            "{e:?}"
        );
        // A device the library does not list, and a library not read.
        let mut gpus = vec![gpu("0000:9a:00.0", 3)];
        join(&mut gpus, &lib);
        assert_eq!(
            gpus[0].serial.err().unwrap().error,
            FieldErrorKind::NotFound
        );
        let mut gpus = vec![gpu("0000:19:00.0", 7)];
        let before = gpus[0].serial.clone();
        join(
            &mut gpus,
            &Reading::Err(FieldError::new(FieldErrorKind::Timeout)),
        );
        assert_eq!(gpus[0].serial, before);
    }
}
