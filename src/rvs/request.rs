//! What an RVS run asks for, validated. The grammar is closed (tool arguments may carry injected text):
//! a level 1-3 or one recipe of [`RECIPES`]; GPUs as for DCGM (`crate::dcgm::request::parse_gpus`).
//!
//! Levels, chosen from RVS's own recipes (ROCm/ROCmValidationSuite `rvs/conf/`):
//! - 1: `gpup_single` — GPU properties read from KFD's topology, no load; seconds. RVS's own
//!   `rvs_level_1` is `rcqt`, a check of installed ROCm packages, which says nothing of a GPU in a container
//!   image, so it is not our level 1.
//! - 2: `levels/rvs_level_2` — PCIe capability (`peqt`), HBM basic (`babel`), XGMI and PCIe transfers
//!   (`pbqt`, `pebb`, 20 s each); minutes.
//! - 3: `levels/rvs_level_3` — HBM mid, PCIe and XGMI bandwidth 30 s each, FP8/FP16/BF16 stress (`gst`);
//!   up to tens of minutes. Levels 4-5 (`memtest` up to 20 passes, 900 s actions) run for hours: not
//!   offered.
//!
//! Levels 2-3 and recipes other than `gpup_single` and `peqt_single` load the GPUs: operator mode and a
//! person's confirmation, as DCGM's levels 2-3.

use std::fmt;

pub use crate::dcgm::request::{GpuSel, InvalidRequest, MAX_GPUS, parse_gpus};

/// Named recipes (`<recipe>.conf` in RVS's conf directory), the deadline each runs under, and whether it
/// loads the GPUs. Durations from the confs' `duration`/`count` (ROCm/ROCmValidationSuite `rvs/conf/`):
/// `gst_single` 7 actions of 10-18 s, `iet_single` 6 of 50 s, `pebb_single` 9 of 5-50 s, `pbqt_single`
/// 14 of 1-10 s, `babel` and `mem` one pass over the GPU's memory; a deadline of 15 min leaves head-room.
pub const RECIPES: &[(&str, u64, bool)] = &[
    ("gpup_single", 120, false),
    ("peqt_single", 120, false),
    ("gst_single", 900, true),
    ("iet_single", 900, true),
    ("pebb_single", 900, true),
    ("pbqt_single", 900, true),
    ("babel", 900, true),
    ("mem", 1800, true),
];

/// `--tests` for rvs-diag: one recipe name of lower-case letters and `_` (checked against [`RECIPES`]).
pub const RECIPE_PATTERN: &str = r"^[a-z_]{1,20}$";

/// Where RVS installs its recipes (`/opt/rocm/share/rocm-validation-suite/conf/`, with a directory per
/// platform such as `MI300X/`; device-metrics-exporter `pkg/exporter/globals/testrunner.go`).
pub const CONF_DIR: &str = "/opt/rocm/share/rocm-validation-suite/conf";
/// Where the test runner image has rvs (device-metrics-exporter `globals.RVSPath`).
pub const RVS_PATH: &str = "/opt/rocm/bin/rvs";
/// Where node-probe `rvs-diag` keeps its PID while it runs in a probe container (as DCGM's).
pub const PID_FILE: &str = "/tmp/k8s-gpu-mcp-rvs-diag.pid";

/// A level or one named recipe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RvsRun {
    Level(u8),
    Recipe(&'static str),
}

impl RvsRun {
    /// The recipe's path under the conf directory, without `.conf`.
    pub fn recipe(&self) -> &'static str {
        match self {
            RvsRun::Level(1) => "gpup_single",
            RvsRun::Level(2) => "levels/rvs_level_2",
            RvsRun::Level(_) => "levels/rvs_level_3",
            RvsRun::Recipe(r) => r,
        }
    }

    /// Whether the recipe is one of a platform directory only (the levels are: `MI300X/levels/...`).
    pub fn platform_only(&self) -> bool {
        matches!(self, RvsRun::Level(2 | 3))
    }

    /// Whether the run loads the GPUs (operator mode and confirmation).
    pub fn loads(&self) -> bool {
        match self {
            RvsRun::Level(l) => *l > 1,
            RvsRun::Recipe(r) => RECIPES.iter().any(|(n, _, load)| n == r && *load),
        }
    }

    /// How long the run may take before the probe stops it.
    pub fn deadline_secs(&self) -> u64 {
        match self {
            RvsRun::Level(1) => 120,
            RvsRun::Level(2) => 15 * 60,
            RvsRun::Level(_) => 45 * 60,
            RvsRun::Recipe(r) => RECIPES
                .iter()
                .find(|(n, _, _)| n == r)
                .map_or(900, |(_, d, _)| *d),
        }
    }

    /// The DCGM-style level the run counts as (1: reads only; 2-3: loads).
    pub fn level(&self) -> u8 {
        match self {
            RvsRun::Level(l) => *l,
            RvsRun::Recipe(_) if self.loads() => 2,
            RvsRun::Recipe(_) => 1,
        }
    }
}

impl fmt::Display for RvsRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RvsRun::Level(l) => write!(f, "level {l} ({})", self.recipe()),
            RvsRun::Recipe(r) => write!(f, "recipe {r}"),
        }
    }
}

/// `1`, `2` or `3`.
pub fn parse_level(s: &str) -> Result<RvsRun, InvalidRequest> {
    match s {
        "1" => Ok(RvsRun::Level(1)),
        "2" => Ok(RvsRun::Level(2)),
        "3" => Ok(RvsRun::Level(3)),
        _ => Err(InvalidRequest(format!(
            "must be 1, 2 or 3 (got `{}`)",
            crate::dcgm::limits::clip(s, 16)
        ))),
    }
}

/// One recipe of [`RECIPES`].
pub fn parse_recipe(s: &str) -> Result<RvsRun, InvalidRequest> {
    RECIPES
        .iter()
        .find(|(n, _, _)| *n == s)
        .map(|(n, _, _)| RvsRun::Recipe(n))
        .ok_or_else(|| {
            InvalidRequest(format!(
                "unknown RVS recipe `{}`: one of {}",
                crate::dcgm::limits::clip(s, 24),
                RECIPES.iter().map(|r| r.0).collect::<Vec<_>>().join(", ")
            ))
        })
}

/// `all` (the empty list) only for a run that does not load the GPUs.
pub fn check_all(run: &RvsRun, gpus: &[GpuSel]) -> Result<(), InvalidRequest> {
    if gpus.is_empty() && run.loads() {
        return Err(InvalidRequest(format!(
            "{run} loads the GPUs for minutes: name them (indices); `all` is for level 1 only"
        )));
    }
    Ok(())
}

/// The platform directory of RVS's confs for a GPU's product name: the longest of `dirs` that the name
/// holds as a whole word (`AMD Instinct MI300X OAM` -> `MI300X`, not `MI300X-HF`). `None`: no such one.
pub fn platform_dir<'a>(product: &str, dirs: &'a [String]) -> Option<&'a str> {
    let words: Vec<&str> = product
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '-')
        .collect();
    dirs.iter()
        .filter(|d| words.iter().any(|w| w.eq_ignore_ascii_case(d)))
        .max_by_key(|d| d.len())
        .map(String::as_str)
}

/// rvs's argv: the run's own recipe (its `device`/`peers` name the GPUs, `recipe.rs`) and the JSON result
/// file. No `-i`: rvs reads `-i` values as GPU indexes when every one is below its GPU count
/// (ROCm/ROCmValidationSuite `rvs/src/rvsexec_do_yaml.cpp:944-981`, `src/gpu_util.cpp:824-834`), so a
/// small KFD gpu_id would name another GPU, and `-i` would replace the recipe's `device` lists.
pub fn rvs_args(conf: &str, json: &str) -> Vec<String> {
    vec![
        "-c".to_string(),
        conf.to_string(),
        "-j".into(),
        json.to_string(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_recipes_parse_and_nothing_else() {
        assert_eq!(parse_level("2").unwrap().recipe(), "levels/rvs_level_2");
        assert!(!parse_level("1").unwrap().loads());
        assert!(parse_level("3").unwrap().loads());
        for bad in ["0", "4", "5", "1;rm", "", "01"] {
            assert!(parse_level(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_recipe("gst_single").unwrap(),
            RvsRun::Recipe("gst_single")
        );
        assert!(parse_recipe("gst_single").unwrap().loads());
        assert!(!parse_recipe("peqt_single").unwrap().loads());
        for bad in [
            "../../etc/passwd",
            "levels/rvs_level_5",
            "gst_single,babel",
            "gst_single -i 1",
            "rcqt_single",
            "",
        ] {
            let e = parse_recipe(bad).unwrap_err().0;
            assert!(e.contains("unknown RVS recipe"), "{e}");
        }
        assert_eq!(parse_recipe("mem").unwrap().deadline_secs(), 1800);
        assert_eq!(parse_level("1").unwrap().deadline_secs(), 120);
    }

    #[test]
    fn all_gpus_only_without_load() {
        assert!(check_all(&RvsRun::Level(1), &[]).is_ok());
        assert!(check_all(&RvsRun::Recipe("peqt_single"), &[]).is_ok());
        assert!(check_all(&RvsRun::Level(2), &[]).is_err());
        assert!(check_all(&RvsRun::Recipe("babel"), &[GpuSel::Index(0)]).is_ok());
    }

    #[test]
    fn the_platform_is_a_whole_word_of_the_product() {
        let dirs: Vec<String> = ["MI300X", "MI300X-HF", "MI325X", "MI300A", "nv21"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            platform_dir("AMD Instinct MI300X OAM", &dirs),
            Some("MI300X")
        );
        assert_eq!(platform_dir("AMD Instinct MI325X", &dirs), Some("MI325X"));
        assert_eq!(
            platform_dir("AMD Instinct MI300X-HF", &dirs),
            Some("MI300X-HF")
        );
        assert_eq!(platform_dir("AMD Instinct MI210", &dirs), None);
    }

    #[test]
    fn argv_is_the_private_recipe_and_the_result_file_never_i() {
        let argv = rvs_args("/tmp/p/recipe.conf", "/tmp/p/r.json");
        assert_eq!(argv, ["-c", "/tmp/p/recipe.conf", "-j", "/tmp/p/r.json"]);
        assert!(!argv.iter().any(|a| a == "-i"));
    }
}
