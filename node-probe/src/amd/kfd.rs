//! The KFD topology (`sys/class/kfd/kfd/topology/nodes/<N>/{gpu_id,properties}`, `amdkfd/kfd_topology.c`):
//! one node per GPU, or per compute partition. `properties` is `key value` lines in decimal; a CPU node
//! has `gpu_id` 0 and `simd_count 0`. A node's `location_id` is `(bus << 8) | devfn` with the partition
//! index ORed into the low bits, so a GPU's nodes are those with its domain, bus and device number (as
//! ROCm's device plugin matches them, `internal/pkg/amdgpu/amdgpu.go`).

use gpu_diag::facts::{FieldError, KfdNodeFacts};

use crate::host::files::HostFiles;

const NODES: &str = "sys/class/kfd/kfd/topology/nodes";
/// `properties` is about 1.5 KiB; a page is the kernel's most.
const MAX_PROPERTIES: usize = 16 * 1024;

/// One GPU node of the topology, with what matches it to its PCI function.
#[derive(Debug, Clone)]
pub struct KfdNode {
    pub facts: KfdNodeFacts,
    pub domain: Option<u32>,
    /// Decimal here, hex in the GPU's sysfs `unique_id`.
    pub unique_id: Option<u64>,
}

impl KfdNode {
    /// Whether this node belongs to the PCI function `bdf` (`dddd:bb:dd.f`) with this `unique_id`.
    pub fn is_of(&self, bdf: &str, unique_id: Option<u64>) -> bool {
        let Some(loc) = self.facts.location_id else {
            return false;
        };
        let parts: Vec<u32> = bdf
            .split([':', '.'])
            .map(|p| u32::from_str_radix(p, 16).unwrap_or(u32::MAX))
            .collect();
        let [domain, bus, device, _] = parts[..] else {
            return false;
        };
        let same_place = self.domain.unwrap_or(0) == domain
            && (loc >> 8) & 0xff == bus
            && (loc >> 3) & 0x1f == device;
        let same_id = match (self.unique_id, unique_id) {
            (Some(a), Some(b)) if a != 0 && b != 0 => a == b,
            _ => true,
        };
        same_place && same_id
    }
}

/// Every GPU node of the topology, in node order; an error when the topology cannot be listed (no KFD:
/// amdkfd not loaded, or the reader's device cgroup refuses it).
pub fn read(files: HostFiles<'_>) -> Result<Vec<KfdNode>, FieldError> {
    let mut nodes: Vec<(u32, String)> = files
        .names(NODES)?
        .into_iter()
        .filter_map(|n| n.parse::<u32>().ok().map(|i| (i, n)))
        .collect();
    nodes.sort();
    Ok(nodes
        .into_iter()
        .filter_map(|(node, name)| read_node(files, node, &name))
        .collect())
}

fn read_node(files: HostFiles<'_>, node: u32, name: &str) -> Option<KfdNode> {
    let gpu_id = files.parse::<u32>(format!("{NODES}/{name}/gpu_id")).get()?;
    if gpu_id == 0 {
        return None;
    }
    let text = files
        .text(format!("{NODES}/{name}/properties"), MAX_PROPERTIES)
        .ok()?;
    let get = |key: &str| -> Option<u64> {
        text.lines().find_map(|l| {
            let (k, v) = l.split_once(' ')?;
            (k == key).then(|| v.trim().parse::<u64>().ok()).flatten()
        })
    };
    let small = |key: &str| get(key).and_then(|v| u32::try_from(v).ok());
    if small("simd_count") == Some(0) {
        return None;
    }
    Some(KfdNode {
        facts: KfdNodeFacts {
            node,
            gpu_id,
            gfx_target_version: small("gfx_target_version"),
            simd_count: small("simd_count"),
            drm_render_minor: small("drm_render_minor"),
            location_id: small("location_id"),
            hive_id: get("hive_id"),
            num_xcc: small("num_xcc"),
        },
        domain: small("domain"),
        unique_id: get("unique_id"),
    })
}
