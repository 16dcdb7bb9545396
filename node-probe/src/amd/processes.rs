//! Processes on AMD GPUs, from the host's `/proc`: a compute process opens `/dev/kfd` and hands KFD a
//! render node (`AMDKFD_IOC_ACQUIRE_VM` takes a DRM fd), so it holds `/dev/dri/renderD<N>` too. Each DRM
//! fd's `fdinfo` names the GPU and its memory (the kernel's `gpu/drm-usage-stats.rst`; amdgpu's
//! `amdgpu_fdinfo.c`): `drm-pdev` (`%04x:%02x:%02x.%d`), `drm-client-id` (one client may be open on
//! several fds: counted once), `drm-memory-vram: N KiB` (older) or `drm-total-vram: N[ KiB| MiB]`. KFD's
//! own `sys/class/kfd/kfd/proc/<pid>/vram_<gpu_id>` (bytes) names the GPU of a compute process by its KFD
//! `gpu_id`. Links are read, never followed.

use std::collections::{BTreeMap, BTreeSet};

use gpu_diag::facts::{GpuProcessFacts, ScanGapsFacts};

use crate::host::MAX_ATTR;
use crate::host::files::HostFiles;

/// One process's use of one GPU, as one of its fds or KFD says.
#[derive(Debug, Clone, Default)]
pub struct Use {
    pub pid: u32,
    pub kfd: bool,
    pub bdf: Option<String>,
    pub render_minor: Option<u32>,
    pub gpu_id: Option<u32>,
    pub client_id: Option<u64>,
    pub vram_bytes: Option<u64>,
}

/// Every use of an AMD GPU on the host, within the holder scan's bounds (a huge fd table is read no
/// further than that), and what the walk did not see.
pub fn scan(files: HostFiles<'_>) -> (Vec<Use>, ScanGapsFacts) {
    let amd_node = |t: &str| t == "/dev/kfd" || t.starts_with("/dev/dri/renderD");
    let mut held = Vec::new();
    let walked = crate::host::held_fds(files, amd_node, |pid, fds| held.push((pid, fds)));
    let mut out = Vec::new();
    for (pid, fds) in held {
        let kfd = fds.iter().any(|(_, t)| t == "/dev/kfd");
        let drm = fds.into_iter().filter_map(|(fd, t)| {
            let minor = t.strip_prefix("/dev/dri/renderD")?.parse::<u32>().ok()?;
            Some((fd, minor))
        });
        for (fd, minor) in drm {
            let info = files
                .text(format!("proc/{pid}/fdinfo/{fd}"), MAX_ATTR)
                .unwrap_or_default();
            out.push(Use {
                pid,
                kfd,
                bdf: key(&info, "drm-pdev").and_then(gpu_diag::pci::normalize_bus_id),
                render_minor: Some(minor),
                gpu_id: None,
                client_id: key(&info, "drm-client-id").and_then(|v| v.parse().ok()),
                vram_bytes: key(&info, "drm-total-vram")
                    .or_else(|| key(&info, "drm-memory-vram"))
                    .and_then(bytes),
            });
        }
        if kfd {
            for name in files
                .names(format!("sys/class/kfd/kfd/proc/{pid}"))
                .unwrap_or_default()
            {
                let Some(gpu_id) = name.strip_prefix("vram_").and_then(|g| g.parse().ok()) else {
                    continue;
                };
                out.push(Use {
                    pid,
                    kfd,
                    gpu_id: Some(gpu_id),
                    vram_bytes: files
                        .parse::<u64>(format!("sys/class/kfd/kfd/proc/{pid}/{name}"))
                        .get(),
                    ..Use::default()
                });
            }
        }
    }
    (out, walked.gaps)
}

fn key<'t>(info: &'t str, key: &str) -> Option<&'t str> {
    info.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == key).then(|| v.trim())
    })
}

/// `N`, `N KiB` or `N MiB` as bytes.
fn bytes(v: &str) -> Option<u64> {
    let mut it = v.split_whitespace();
    let n: u64 = it.next()?.parse().ok()?;
    let mult = match it.next() {
        None => 1,
        Some("KiB") => 1 << 10,
        Some("MiB") => 1 << 20,
        Some(_) => return None,
    };
    n.checked_mul(mult)
}

/// The processes on one GPU: uses naming its PCI address, one of its render minors or KFD `gpu_id`s.
/// A process holding `/dev/kfd` is `compute`, else `graphics`; its VRAM is KFD's where KFD says,
/// else the sum over its distinct DRM clients.
pub fn on_gpu(
    uses: &[Use],
    bdf: &str,
    render_minors: &BTreeSet<u32>,
    gpu_ids: &BTreeSet<u32>,
) -> Vec<GpuProcessFacts> {
    let mut per_pid: BTreeMap<u32, OnGpu> = BTreeMap::new();
    for u in uses {
        let mine = match (&u.bdf, u.gpu_id, u.render_minor) {
            (Some(b), _, _) => b == bdf,
            (None, Some(g), _) => gpu_ids.contains(&g),
            (None, None, Some(m)) => render_minors.contains(&m),
            _ => false,
        };
        if !mine {
            continue;
        }
        let e = per_pid.entry(u.pid).or_default();
        e.kfd |= u.kfd;
        match (u.gpu_id, u.vram_bytes) {
            (Some(_), Some(v)) => e.kfd_vram = Some(e.kfd_vram.unwrap_or(0) + v),
            (None, Some(v)) => {
                e.clients.insert(u.client_id, v);
            }
            _ => {}
        }
    }
    per_pid
        .into_iter()
        .map(|(pid, e)| GpuProcessFacts {
            pid,
            kind: if e.kfd { "compute" } else { "graphics" }.to_string(),
            used_memory_bytes: e
                .kfd_vram
                .or_else(|| (!e.clients.is_empty()).then(|| e.clients.values().sum())),
            gpu_instance_id: None,
            compute_instance_id: None,
        })
        .collect()
}

/// One process's use of one GPU, summed.
#[derive(Default)]
struct OnGpu {
    kfd: bool,
    /// KFD's own count, where it has one.
    kfd_vram: Option<u64>,
    /// VRAM per DRM client id (one client open on several fds counts once).
    clients: BTreeMap<Option<u64>, u64>,
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes() {
        assert_eq!(super::bytes("2048 KiB"), Some(2 << 20));
        assert_eq!(super::bytes("3 MiB"), Some(3 << 20));
        assert_eq!(super::bytes("17"), Some(17));
        assert_eq!(super::bytes("1 GiB"), None);
    }
}
