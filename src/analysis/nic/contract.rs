//! The NIC section's types as the topology report serialises them: the ports, their judgement, and the
//! GPU x NIC affinity matrix.

use serde::{Deserialize, Serialize};

use crate::facts::Reading;

/// The NIC section of the topology report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NicReport {
    /// One line: the ports by kind and rate and whether they are all fine, or that the node has no RDMA
    /// device, or why it could not be read.
    pub summary: String,
    /// Milliseconds between the two counter samples ("now" increases are over this window).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_interval_ms: Option<u64>,
    pub ports: Vec<NicPort>,
    /// GPU x NIC relations, one row per GPU (empty when there are no NICs or no GPUs).
    pub affinity: NicAffinity,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NicPort {
    /// `mlx5_3/1`: device and port.
    pub port: String,
    pub device: String,
    pub pci_bus_id: Reading<String>,
    pub numa_node: Reading<i32>,
    /// `hca_type` (`MT4129`), or the board id when that is unreadable.
    pub model: String,
    /// `InfiniBand` or `Ethernet` (RoCE).
    pub link_layer: Reading<String>,
    /// `ACTIVE/LinkUp`, `DOWN/Polling`, ...; for RoCE the netdev's operstate follows.
    pub state: String,
    pub rate_gbps: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netdev: Option<String>,
    /// Non-zero error counters: `symbol_error = 1432 (+61 in 1.0 s)`.
    pub errors: Vec<String>,
    /// GPUs whose nearest NIC this is.
    pub serves_gpus: Vec<u32>,
    /// `ok`, or the finding kinds that name this port (`down`, `rate_degraded`, `flapping`, ...).
    pub judgement: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NicAffinity {
    /// NIC device names, in the order of each row's cells.
    pub columns: Vec<String>,
    pub rows: Vec<NicAffinityRow>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NicAffinityRow {
    pub gpu: u32,
    /// `PIX`, `PXB`, `PHB`, `NODE`, `SYS`, or `?` when unknown.
    pub cells: Vec<String>,
    /// The closest relation in the row.
    pub nearest: String,
    /// The NICs at that relation.
    pub nearest_nics: Vec<String>,
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use crate::finding::Finding;

    #[test]
    fn the_contract_stays_compatible_both_ways() {
        // A document from a probe without the NIC section parses here (`nics` stays absent) ...
        let old =
            r#"{"matrix":{"columns":[],"rows":[],"legend":[]},"pairs":[],"gpus":[],"findings":[]}"#;
        let r: crate::analysis::topology::TopologyReport = serde_json::from_str(old).unwrap();
        assert!(r.nics.is_none());
        // ... and a reader without it ignores the section: reports do not deny unknown fields, and NIC
        // findings use action kinds older readers know.
        #[derive(Deserialize)]
        struct OldTopology {
            findings: Vec<Finding>,
        }
        let facts = crate::scenarios::parse(
            &crate::scenarios::find("dgx-h100-ib-flapping")
                .unwrap()
                .json(),
        )
        .unwrap();
        let new =
            crate::analysis::topology::analyze(&facts, &crate::options::AnalysisOptions::default());
        assert!(new.nics.is_some());
        let text = serde_json::to_string(&new).unwrap();
        let read: OldTopology = serde_json::from_str(&text).unwrap();
        assert!(read.findings.iter().any(|f| f.code == "nic.link_flapping"));
    }
}
