//! One GPU's line of the ECC report, whoever made the GPU (`super::ecc` assembles them; a vendor whose
//! fields are not NVML's builds its own through `super::vendor`).

use serde::{Deserialize, Serialize};

use crate::facts::{
    EccLocationFacts, EccModeFacts, Reading, RemappedRowsFacts, RetiredPagesFacts,
    RowRemapHistogram,
};

use super::GpuRef;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GpuEcc {
    #[serde(flatten)]
    pub gpu: GpuRef,
    pub mode: Reading<EccModeFacts>,
    pub volatile: EccCounts,
    pub aggregate: EccCounts,
    pub by_location: Vec<EccLocationFacts>,
    /// Pre-Ampere page retirement (not supported on A100/H100, which remap rows instead).
    pub retired_pages: Reading<RetiredPagesFacts>,
    pub remapped_rows: Reading<RemappedRowsFacts>,
    pub row_remapper_histogram: Reading<RowRemapHistogram>,
    pub sram_threshold_exceeded: Reading<bool>,
    /// False when persistence is off and nvidia-persistenced is not running (see the caveat).
    pub volatile_counters_reliable: Reading<bool>,
    /// One line: what the memory state requires.
    pub verdict: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EccCounts {
    pub corrected: Reading<u64>,
    pub uncorrected: Reading<u64>,
}
