//! Compute and memory partitions (MI300-class): `current_compute_partition` (`SPX|DPX|TPX|QPX|CPX`,
//! `amdgpu_gfx.c`) and `current_memory_partition` (`NPS1..8`, `amdgpu_gmc.c`) on the GPU's PCI device,
//! and the partitions' own DRM nodes, platform devices `sys/devices/platform/amdgpu_xcp_<n>/drm/renderD*`
//! (`amdxcp/amdgpu_xcp_drv.c`). An xcp device has no PCI attributes: it belongs to the GPU whose KFD node
//! has its render minor (as ROCm's device plugin and DRA driver pair them).

use gpu_diag::facts::{AmdPartitionFacts, AmdXcpFacts, FieldErrorKind, Reading};

use super::kfd::KfdNode;
use crate::host::files::HostFiles;

const PLATFORM: &str = "sys/devices/platform";

/// One `amdgpu_xcp_<n>` device and its render minor.
pub struct Xcp {
    pub n: u32,
    pub name: String,
    pub render_minor: Option<u32>,
    pub card_minor: Option<u32>,
}

/// Every `amdgpu_xcp_<n>` of the host, by `n`.
pub fn xcps(files: HostFiles<'_>) -> Vec<Xcp> {
    let mut out: Vec<Xcp> = files
        .names(PLATFORM)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|name| {
            let n = name.strip_prefix("amdgpu_xcp_")?.parse::<u32>().ok()?;
            let minor = |prefix: &str| {
                super::discover::drm_node(files, &format!("{PLATFORM}/{name}"), prefix)
                    .ok()
                    .and_then(|r| r[prefix.len()..].parse().ok())
            };
            Some(Xcp {
                n,
                render_minor: minor("renderD"),
                card_minor: minor("card"),
                name,
            })
        })
        .collect();
    out.sort_by_key(|x| x.n);
    out
}

pub fn read(
    files: HostFiles<'_>,
    dir: &str,
    kfd_nodes: &[KfdNode],
    xcps: &[Xcp],
) -> Reading<AmdPartitionFacts> {
    let compute = files.line(format!("{dir}/current_compute_partition"));
    let memory = files.line(format!("{dir}/current_memory_partition"));
    // Before MI300 neither file exists: the GPU has no partitions at all.
    if let (Err(a), Err(b)) = (&compute, &memory)
        && a.error == FieldErrorKind::NotFound
        && b.error == FieldErrorKind::NotFound
    {
        return Reading::not_supported();
    }
    let xcps = xcps
        .iter()
        .filter_map(|x| {
            let minor = x.render_minor?;
            let node = kfd_nodes
                .iter()
                .find(|k| k.facts.drm_render_minor == Some(minor))?;
            Some(AmdXcpFacts {
                name: x.name.clone(),
                render_minor: Some(minor),
                card_minor: x.card_minor,
                gpu_id: Some(node.facts.gpu_id),
            })
        })
        .collect();
    Reading::Ok(AmdPartitionFacts {
        compute: compute.into(),
        memory: memory.into(),
        xcps,
    })
}
