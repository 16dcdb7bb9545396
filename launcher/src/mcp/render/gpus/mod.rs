//! Per-GPU sections as text, one file per kind: [`inventory`], [`telemetry`] and [`processes`], each with
//! its summary (one line for the GPUs alike, as the topology and ECC are; a GPU that deviates gets its
//! own line; a lost GPU is said once, in words) and its typed details. Their tools and
//! `describe_gpu_node` both use them.

pub mod inventory;
pub mod processes;
pub mod telemetry;

use std::collections::BTreeSet;

use gpu_diag::analysis::GpuRef;
use gpu_diag::analysis::health::HealthReport;

use super::details::Fields;

/// The GPUs health found lost or without an NVML handle: their readings all fail alike.
pub fn lost(h: &HealthReport) -> BTreeSet<u32> {
    h.gpus
        .iter()
        .filter(|g| {
            g.findings
                .iter()
                .any(|f| f.code == "gpu.lost" || f.code == "gpu.handle_failed")
        })
        .map(|g| g.gpu.index)
        .collect()
}

/// Which GPU an entry is about, as every part of the details names it.
fn gpu_ref(f: &mut Fields, g: &GpuRef) {
    f.text("index", g.index)
        .reading("uuid", &g.uuid)
        .reading("pci_bus_id", &g.pci_bus_id);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::render::details::{Entry, write_entry};
    use crate::mcp::render::text::serialized_details;
    use gpu_diag::facts::{FieldError, FieldErrorKind, Reading};

    fn written(e: &Entry) -> String {
        let mut out = String::new();
        write_entry(e, 0, &mut out);
        out
    }

    fn facts(s: &gpu_diag::scenarios::Scenario) -> gpu_diag::facts::NodeFacts {
        gpu_diag::scenarios::parse(&s.json()).unwrap()
    }

    /// An AMD-only node answers in AMD's words: no NVIDIA driver search, CUDA, MIG, persistence or
    /// NVLink field, in the details or the summary; amdgpu, ROCm and the partition modes are named.
    #[test]
    fn amd_only_inventories_name_no_nvidia_field() {
        let opts = Default::default();
        for name in [
            "mi300x-healthy",
            "mi300x-cpx",
            "mi355x-healthy",
            "mi250x-legacy-ras",
        ] {
            let s = gpu_diag::scenarios::find(name).unwrap();
            let inv = gpu_diag::analysis::inventory::analyze(&facts(s), &opts);
            let mut text = written(&inventory::details(&inv));
            inventory::summary(&inv, &BTreeSet::new(), &mut text);
            for word in [
                "NVIDIA",
                "nvml",
                "cuda",
                "CUDA",
                "mig_",
                "MIG",
                "persistence",
                "nvlink",
            ] {
                assert!(!text.contains(word), "{name}: `{word}` in\n{text}");
            }
            assert!(
                text.contains("amdgpu_version=6.12.12 (out-of-tree)"),
                "{name}: {text}"
            );
            assert!(text.contains("rocm_version=6.4.1-83"), "{name}: {text}");
            assert!(
                text.contains("GPUs: 8 enumerated; AMD, amdgpu 6.12.12"),
                "{name}: {text}"
            );
        }
        let s = gpu_diag::scenarios::find("mi300x-cpx").unwrap();
        let inv = gpu_diag::analysis::inventory::analyze(&facts(s), &opts);
        let text = written(&inventory::details(&inv));
        assert!(text.contains("compute_partition=CPX"), "{text}");
    }

    /// The typed details say what the serialized report says, in the same layout, on every built-in
    /// scenario, and where every reading failed.
    #[test]
    fn typed_details_match_the_serialized_report() {
        let opts = Default::default();
        for s in gpu_diag::scenarios::BUILTIN {
            let inv = gpu_diag::analysis::inventory::analyze(&facts(s), &opts);
            let mut shown = serde_json::to_value(&inv).unwrap();
            inventory::as_rendered(&mut shown);
            assert_eq!(
                written(&inventory::details(&inv)),
                written(&serialized_details(&shown)),
                "{}",
                s.name
            );
            let tel = gpu_diag::analysis::telemetry::analyze(&facts(s), &opts);
            assert_eq!(
                written(&telemetry::details(&tel)),
                written(&serialized_details(&tel)),
                "{}",
                s.name
            );
            let procs = gpu_diag::analysis::processes::analyze(&facts(s), &opts);
            let mut shown = serde_json::to_value(&procs).unwrap();
            processes::as_rendered(&mut shown);
            assert_eq!(
                written(&processes::details(&procs)),
                written(&serialized_details(&shown)),
                "{}",
                s.name
            );
        }
        let s = gpu_diag::scenarios::find("a100-mig").unwrap();
        let mut inv = gpu_diag::analysis::inventory::analyze(&facts(s), &opts);
        let failed = FieldError::with_message(FieldErrorKind::Unknown, "boom");
        inv.device_count = Reading::Err(failed.clone());
        inv.node = Default::default();
        let g = &mut inv.gpus[0];
        g.handle_error = Some(FieldError::new(FieldErrorKind::GpuIsLost));
        g.name = Reading::Err(failed.clone());
        g.mig_mode = Some(Reading::Err(FieldError::new(FieldErrorKind::NotSupported)));
        g.pcie.max_link_gen = Reading::Err(failed.clone());
        g.mig_devices.as_mut().unwrap()[0].profile = Reading::Err(failed.clone());
        let text = written(&inventory::details(&inv));
        assert!(text.contains("mig_mode=<not_supported>"), "{text}");
        assert_eq!(text, written(&serialized_details(&inv)));
        let mut tel = gpu_diag::analysis::telemetry::analyze(&facts(s), &opts);
        let t = &mut tel.gpus[0];
        t.power.draw_w = Reading::Err(failed.clone());
        t.power.limit_w = Reading::Ok(f64::NAN);
        t.power.max_limit_w = Reading::Ok(300.0);
        t.utilization = Reading::Err(FieldError::new(FieldErrorKind::NotSupported));
        t.clocks_event_reasons = Reading::Err(failed.clone());
        t.fan_speed_pct = Reading::Ok((0..40).collect());
        tel.gpus[1].fan_speed_pct = Reading::Ok(Vec::new());
        let text = written(&telemetry::details(&tel));
        assert!(text.contains("max_limit_w=300.0"), "{text}");
        assert_eq!(text, written(&serialized_details(&tel)));
        let mut procs = gpu_diag::analysis::processes::analyze(&facts(s), &opts);
        let mut p = procs.gpus[0]
            .processes
            .ok()
            .expect("a100-mig runs processes")
            .clone();
        p[0].used_memory_mib = None;
        p[0].name = Reading::Err(failed.clone());
        procs.gpus[0].processes = Reading::Ok(p);
        procs.gpus[1].processes = Reading::Err(failed);
        assert_eq!(
            written(&processes::details(&procs)),
            written(&serialized_details(&procs))
        );
    }
}
