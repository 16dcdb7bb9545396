//! How two PCI devices connect, in the terms of `nvidia-smi topo -m` (PIX, PXB, PHB, NODE, SYS): from NVML's
//! topology level for a GPU pair, and from sysfs paths for a GPU and a NIC. Ordered nearest first.

use std::fmt;

/// The PCIe relation of two devices; `Ord` is closeness, nearest first, unknown last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PciRelation {
    /// At most a single PCIe bridge.
    Pix,
    /// Multiple PCIe bridges, without the host bridge.
    Pxb,
    /// Through a PCIe host bridge (typically the CPU).
    Phb,
    /// Between PCIe host bridges within a NUMA node.
    Node,
    /// Across the SMP interconnect between NUMA nodes.
    Sys,
    /// Not known (`?` in the matrix).
    Unknown,
}

impl PciRelation {
    pub const ALL: [PciRelation; 6] = [
        PciRelation::Pix,
        PciRelation::Pxb,
        PciRelation::Phb,
        PciRelation::Node,
        PciRelation::Sys,
        PciRelation::Unknown,
    ];

    /// `nvmlGpuTopologyLevel_t` as `nvidia-smi topo -m` names it (0, internal, shows as PIX).
    pub fn from_nvml_level(level: u32) -> Self {
        match level {
            0 | 10 => PciRelation::Pix,
            20 => PciRelation::Pxb,
            30 => PciRelation::Phb,
            40 => PciRelation::Node,
            50 => PciRelation::Sys,
            _ => PciRelation::Unknown,
        }
    }

    /// How two PCI functions connect, from their sysfs paths (root complex first, the function last) and
    /// NUMA nodes: SYS across NUMA nodes; NODE between host bridges of one node; PHB through the host
    /// bridge; PIX when each sits at most one port below their common bridge (one PCIe switch); PXB
    /// otherwise.
    pub fn from_paths(
        a: &[String],
        a_numa: Option<i32>,
        b: &[String],
        b_numa: Option<i32>,
    ) -> Self {
        if let (Some(x), Some(y)) = (a_numa, b_numa)
            && x >= 0
            && y >= 0
            && x != y
        {
            return PciRelation::Sys;
        }
        if a.len() < 2 || b.len() < 2 {
            return PciRelation::Unknown;
        }
        if a[0] != b[0] {
            // -1 on both: a machine without NUMA, so one node.
            return match (a_numa, b_numa) {
                (Some(x), Some(y)) if x == y || (x < 0 && y < 0) => PciRelation::Node,
                _ => PciRelation::Unknown,
            };
        }
        let (ba, bb) = (&a[1..a.len() - 1], &b[1..b.len() - 1]);
        let common = ba.iter().zip(bb).take_while(|(x, y)| x == y).count();
        if common == 0 {
            PciRelation::Phb
        } else if ba.len() - common <= 1 && bb.len() - common <= 1 {
            PciRelation::Pix
        } else {
            PciRelation::Pxb
        }
    }

    /// The matrix cell as `nvidia-smi topo -m` prints it, `?` when unknown.
    pub fn as_str(self) -> &'static str {
        match self {
            PciRelation::Pix => "PIX",
            PciRelation::Pxb => "PXB",
            PciRelation::Phb => "PHB",
            PciRelation::Node => "NODE",
            PciRelation::Sys => "SYS",
            PciRelation::Unknown => "?",
        }
    }

    /// The relation a report's cell names (the inverse of [`PciRelation::as_str`]).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for PciRelation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(s: &str) -> Vec<String> {
        s.split('/').map(str::to_string).collect()
    }

    #[test]
    fn nvml_levels_name_as_topo_m() {
        let name = |l| PciRelation::from_nvml_level(l).as_str();
        assert_eq!(name(0), "PIX");
        assert_eq!(name(10), "PIX");
        assert_eq!(name(20), "PXB");
        assert_eq!(name(30), "PHB");
        assert_eq!(name(40), "NODE");
        assert_eq!(name(50), "SYS");
        assert_eq!(name(77), "?");
    }

    #[test]
    fn nearest_first_and_strings_round_trip() {
        let mut all = PciRelation::ALL;
        all.reverse();
        all.sort();
        assert_eq!(all, PciRelation::ALL);
        assert!(PciRelation::Pix < PciRelation::Sys && PciRelation::Sys < PciRelation::Unknown);
        for r in PciRelation::ALL {
            assert_eq!(PciRelation::parse(r.as_str()), Some(r));
            assert_eq!(r.to_string(), r.as_str());
        }
        assert_eq!(PciRelation::parse("NV18"), None);
    }

    #[test]
    fn relations_follow_topo_m() {
        let rel =
            |a: &[String], an, b: &[String], bn| PciRelation::from_paths(a, an, b, bn).as_str();
        let gpu = path("pci0000:17/0000:17:01.0/0000:18:00.0/0000:19:00.0/0000:1b:00.0");
        let same_switch = path("pci0000:17/0000:17:01.0/0000:18:00.0/0000:19:04.0/0000:1c:00.0");
        let deeper = path(
            "pci0000:17/0000:17:01.0/0000:18:00.0/0000:19:08.0/0000:20:00.0/0000:21:00.0/0000:22:00.0",
        );
        let other_port = path("pci0000:17/0000:17:03.0/0000:30:00.0");
        let other_root = path("pci0000:5d/0000:5d:01.0/0000:5e:00.0");
        assert_eq!(rel(&gpu, Some(0), &same_switch, Some(0)), "PIX");
        assert_eq!(rel(&gpu, Some(0), &deeper, Some(0)), "PXB");
        assert_eq!(rel(&gpu, Some(0), &other_port, Some(0)), "PHB");
        assert_eq!(rel(&gpu, Some(0), &other_root, Some(0)), "NODE");
        assert_eq!(rel(&gpu, Some(0), &other_root, Some(1)), "SYS");
        assert_eq!(rel(&gpu, Some(-1), &other_root, Some(-1)), "NODE");
        assert_eq!(rel(&gpu, None, &other_root, Some(1)), "?");
        assert_eq!(rel(&[], Some(0), &other_root, Some(1)), "SYS");
        assert_eq!(rel(&[], Some(0), &other_root, Some(0)), "?");
        // Two functions of one dual-port adapter.
        let f1 = path("pci0000:17/0000:17:01.0/0000:18:00.0/0000:19:04.0/0000:1c:00.1");
        assert_eq!(rel(&same_switch, Some(0), &f1, Some(0)), "PIX");
    }
}
