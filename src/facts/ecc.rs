//! A GPU's memory errors: ECC mode and counts (totals and per location), retired pages, remapped rows.

use serde::{Deserialize, Serialize};

use super::reading::Reading;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EccFacts {
    #[serde(default)]
    pub mode: Reading<EccModeFacts>,
    /// Totals: `nvmlDeviceGetTotalEccErrors`.
    #[serde(default)]
    pub volatile_corrected: Reading<u64>,
    #[serde(default)]
    pub volatile_uncorrected: Reading<u64>,
    #[serde(default)]
    pub aggregate_corrected: Reading<u64>,
    #[serde(default)]
    pub aggregate_uncorrected: Reading<u64>,
    /// Per memory location (`l1`, `l2`, `dram`, `register_file`, `texture`, `texture_shm`, `cbu`, `sram`).
    #[serde(default)]
    pub by_location: Vec<EccLocationFacts>,
    /// Pre-Ampere page retirement; not_supported on A100/H100.
    #[serde(default)]
    pub retired_pages: Reading<RetiredPagesFacts>,
    /// Ampere+ row remapping (`nvmlDeviceGetRemappedRows`); not_supported with active MIG instances.
    #[serde(default)]
    pub remapped_rows: Reading<RemappedRowsFacts>,
    /// Per-bank remap availability histogram, where available.
    #[serde(default)]
    pub row_remapper_histogram: Reading<RowRemapHistogram>,
    /// SRAM uncorrectable-error threshold flag (Ampere+), where available.
    #[serde(default)]
    pub sram_threshold_exceeded: Reading<bool>,
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct EccModeFacts {
    pub current: bool,
    pub pending: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EccLocationFacts {
    pub location: String,
    #[serde(default)]
    pub volatile_corrected: Reading<u64>,
    #[serde(default)]
    pub volatile_uncorrected: Reading<u64>,
    #[serde(default)]
    pub aggregate_corrected: Reading<u64>,
    #[serde(default)]
    pub aggregate_uncorrected: Reading<u64>,
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct RetiredPagesFacts {
    pub single_bit: u32,
    pub double_bit: u32,
    pub pending: bool,
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct RemappedRowsFacts {
    pub correctable: u32,
    pub uncorrectable: u32,
    pub pending: bool,
    pub failure: bool,
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct RowRemapHistogram {
    pub max: u32,
    pub high: u32,
    pub partial: u32,
    pub low: u32,
    pub none: u32,
}
