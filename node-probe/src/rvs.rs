//! `node-probe rvs-diag`: AMD's ROCm Validation Suite (`rvs -c <private recipe> -j <file>`) on
//! the idle, unpartitioned AMD GPUs of a request, with a deadline — the AMD twin of `dcgm-diag`.
//!
//! - **Idle first.** The holders are read before anything runs (the kubelet's PodResources with the DRA
//!   facts, the processes holding `/dev/kfd` and the GPU's render node, as `allocation` reads them) and
//!   `gpu_diag::dcgm::select::select_for` decides: a held GPU is never passed to rvs.
//! - **Partitioned GPUs refused.** AMD's test runner is not for partitioned GPUs
//!   (../shared/reference/amd-gpus.md section 6): a GPU in DPX/TPX/QPX/CPX (more than one KFD node) is
//!   left out with a clear line.
//! - **Only the approved GPUs.** rvs runs a recipe of this run's own, RVS's recipe with every action's
//!   `device` and every `peers` set to the selected GPUs' KFD `gpu_id`s (`gpu_diag::rvs::recipe`: no
//!   `-i`, which RVS reads as indexes when the values are small), written 0600 in a private 0700
//!   directory and removed with it after the run; pbqt (transfers between GPUs) is left out, and the
//!   report says so, when fewer than two GPUs are selected. Results, keyed by `gpu_id` (`srcgpu`/`dstgpu`
//!   for transfers), map back to the node's GPU index and PCI address (`gpu_diag::rvs`).
//! - **rvs from this pod's image**: `--rvs PATH`, else `rvs` on `PATH`, else `/opt/rocm/bin/rvs` (AMD's
//!   `rocm/test-runner` image); recipes from `--conf-dir`, default RVS's
//!   `/opt/rocm/share/rocm-validation-suite/conf`, the GPU's platform directory (`MI300X/`) first. No rvs,
//!   or no recipe, is a clear "not run", never a crash.
//! - **Time and cancellation** as `dcgm-diag` (`crate::dcgm::execute`): a deadline per level; on the
//!   deadline or SIGTERM/SIGINT, rvs gets SIGTERM, and after `--stop-grace-secs` its whole process group
//!   is killed; the group is killed on every path once rvs has ended. The result file is read up to
//!   `gpu_diag::rvs::parse::MAX_FILE_BYTES`; stdout is capped as dcgmi's.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use gpu_diag::contract::{ErrorKind, ProbeDocument, ProbeError, Report};
use gpu_diag::dcgm::select::{self, Skipped};
use gpu_diag::facts::{GpuVendor, NodeFacts};
use gpu_diag::rvs::parse::{self, MAX_FILE_BYTES};
use gpu_diag::rvs::recipe::{self, Narrowed};
use gpu_diag::rvs::report::{self, RvsInput, Tested};
use gpu_diag::rvs::request::{self, RvsRun};

use crate::dcgm::{BEFORE, PidFile, execute, fill_holders, host_root_of, now_unix, private_dir};
use crate::options::{GlobalArgs, KernelLogArgs};
use crate::source::{self, SourceSpec};

#[derive(Debug, Args, Clone)]
pub struct RvsDiagArgs {
    /// Level: 1 (gpup_single: GPU properties, seconds), 2 (RVS's rvs_level_2: PCIe, HBM, XGMI; minutes),
    /// 3 (rvs_level_3: + bandwidth and compute stress; up to tens of minutes).
    #[arg(
        long,
        value_name = "1|2|3",
        required_unless_present = "tests",
        conflicts_with = "tests"
    )]
    pub level: Option<String>,
    /// One named RVS recipe instead of a level (gpup_single, peqt_single, gst_single, iet_single,
    /// pebb_single, pbqt_single, babel, mem).
    #[arg(long, value_name = "RECIPE")]
    pub tests: Option<String>,
    /// The GPUs to test, comma-separated indices (`all`: every GPU, level 1 and read-only recipes only);
    /// held and partitioned GPUs are left out.
    #[arg(long, value_name = "INDEX,...")]
    pub gpus: String,
    /// Run this rvs instead of the one on PATH or /opt/rocm/bin/rvs.
    #[arg(long, value_name = "PATH")]
    pub rvs: Option<PathBuf>,
    /// RVS's recipe directory (default /opt/rocm/share/rocm-validation-suite/conf).
    #[arg(long, value_name = "DIR")]
    pub conf_dir: Option<PathBuf>,
    /// Stop the run after this many seconds (at most the level's deadline).
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=2700))]
    pub timeout_secs: Option<u64>,
    /// Seconds between rvs's SIGTERM and the kill of its process group.
    #[arg(long, value_name = "SECONDS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=60))]
    pub stop_grace_secs: u64,
    /// Write this process's PID and start time here while it runs (removed at its end), for the launcher's
    /// orderly stop of a cancelled run.
    #[arg(long, value_name = "PATH")]
    pub pid_file: Option<PathBuf>,
}

fn usage(flag: &str, e: impl std::fmt::Display) -> ProbeError {
    ProbeError::new(ErrorKind::Usage, format!("invalid {flag}: {e}"))
        .hint("node-probe rvs-diag --level 1|2|3 (or --tests gst_single) --gpus 0,1")
}

/// rvs: the given path, else on `PATH`, else `/opt/rocm/bin/rvs`.
fn find_rvs(given: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = given {
        return p
            .is_file()
            .then(|| std::path::absolute(p).unwrap_or(p.to_path_buf()));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("rvs"))
        .chain(std::iter::once(PathBuf::from(request::RVS_PATH)))
        .find(|p| p.is_file())
}

/// The recipe's conf: in the GPU's platform directory first (as AMD's runner does), else at the top of
/// `dir` unless the recipe is a platform's only (the levels).
fn find_conf(dir: &Path, run: &RvsRun, product: &str) -> Result<PathBuf, String> {
    let subdirs: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .take(512)
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .filter_map(|e| e.file_name().to_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let platform = request::platform_dir(product, &subdirs);
    let name = format!("{}.conf", run.recipe());
    if let Some(p) = platform {
        let c = dir.join(p).join(&name);
        if c.is_file() {
            return Ok(c);
        }
    }
    if !run.platform_only() {
        let c = dir.join(&name);
        if c.is_file() {
            return Ok(c);
        }
    }
    Err(format!(
        "RVS has no {name} for this GPU ({product}{}) under {}: the image's RVS does not carry this \
         recipe for this platform",
        platform.map_or(", no platform directory of its".into(), |p| format!(
            ", platform {p}"
        )),
        dir.display()
    ))
}

/// Leave out what rvs must not be given: a partitioned GPU (not for AMD's runner), one without a single
/// KFD gpu_id. The rest, with what rvs names them by.
fn gpu_ids(facts: &NodeFacts, sel: &mut select::Selection) -> Vec<Tested> {
    let mut tested = Vec::new();
    let mut keep = Vec::new();
    for &i in &sel.to_test {
        let Some(g) = facts.gpus.iter().find(|g| g.index == i) else {
            continue;
        };
        let skip = |why: &str, detail: String| Skipped {
            requested: i.to_string(),
            index: Some(i),
            uuid: g.uuid.ok().cloned(),
            why: why.into(),
            detail,
            vendor: None,
        };
        let amd = g.amd.as_ref();
        let mode = amd
            .and_then(|a| a.partition.ok())
            .and_then(|p| p.compute.ok());
        let nodes = amd.and_then(|a| a.kfd_nodes.ok());
        if let Some(m) = mode.filter(|m| m.as_str() != "SPX") {
            sel.skipped.push(skip(
                "partitioned",
                format!(
                    "the GPU is partitioned ({}): AMD's test runner (RVS) is not for partitioned GPUs; test it \
                     in SPX mode",
                    gpu_diag::rvs::parse::clean(m)
                ),
            ));
            continue;
        }
        match nodes.map(Vec::as_slice) {
            Some([one]) => {
                keep.push(i);
                tested.push(Tested {
                    index: i,
                    gpu_id: one.gpu_id,
                    pci_bus_id: g.pci_bus_id.ok().cloned(),
                });
            }
            Some(n) if n.len() > 1 => sel.skipped.push(skip(
                "partitioned",
                format!(
                    "the GPU has {} KFD nodes (compute partitions): AMD's test runner (RVS) is not for \
                     partitioned GPUs",
                    n.len()
                ),
            )),
            _ => sel.skipped.push(skip(
                "unreadable",
                "no KFD topology node names this GPU (no gpu_id for rvs): is amdgpu's KFD loaded?".into(),
            )),
        }
    }
    sel.to_test = keep;
    tested
}

/// RVS's recipes are a few KiB; one larger than this is not read.
const MAX_CONF_BYTES: u64 = 1 << 20;

/// RVS's recipe file, as text.
fn read_conf(path: &Path) -> Result<String, String> {
    let mut buf = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_CONF_BYTES + 1).read_to_end(&mut buf))
        .map_err(|e| format!("RVS's recipe {} could not be read: {e}", path.display()))?;
    if buf.len() as u64 > MAX_CONF_BYTES {
        return Err(format!(
            "RVS's recipe {} is larger than 1 MiB: not read",
            path.display()
        ));
    }
    String::from_utf8(buf).map_err(|_| format!("RVS's recipe {} is not UTF-8", path.display()))
}

/// A new file only this user reads (in the private directory, never an existing path).
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())
}

/// The result file, up to [`MAX_FILE_BYTES`].
fn read_results(path: &Path) -> Result<(parse::Results, String), String> {
    let f = std::fs::File::open(path).map_err(|e| {
        format!("rvs wrote no result file ({e}): it did not run its recipe, see its stderr")
    })?;
    let mut buf = Vec::new();
    f.take(MAX_FILE_BYTES as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| format!("rvs's result file could not be read: {e}"))?;
    if buf.len() > MAX_FILE_BYTES {
        return Err(format!(
            "rvs's result file is larger than {} MiB: not read",
            MAX_FILE_BYTES >> 20
        ));
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    parse::parse(&text).map(|r| (r, text))
}

pub fn run(global: &GlobalArgs, args: &RvsDiagArgs) -> Result<ProbeDocument, ProbeError> {
    let run = match (&args.level, &args.tests) {
        (Some(l), _) => request::parse_level(l).map_err(|e| usage("--level", e))?,
        (None, Some(t)) => request::parse_recipe(t).map_err(|e| usage("--tests", e))?,
        (None, None) => return Err(usage("--level", "give --level or --tests")),
    };
    let requested = request::parse_gpus(&args.gpus).map_err(|e| usage("--gpus", e))?;
    request::check_all(&run, &requested).map_err(|e| usage("--gpus", e))?;
    let deadline = run.deadline_secs();
    let deadline = args.timeout_secs.map_or(deadline, |t| t.min(deadline));
    let _pid_file = match &args.pid_file {
        Some(p) => Some(PidFile::write(p).map_err(|e| {
            ProbeError::new(ErrorKind::Io, format!("--pid-file {}: {e}", p.display()))
        })?),
        None => None,
    };
    let spec = SourceSpec::from_args(global)?;
    let simulated = matches!(spec, SourceSpec::Simulated { .. });
    let root = host_root_of(&spec).to_path_buf();

    let mut facts = source::collect(&spec, BEFORE, &KernelLogArgs::default())?;
    if !simulated || global.host_root.is_some() {
        fill_holders(&mut facts, &root);
        // The reset's holder scan (`gpu_diag::operator::scan`): what it could not see leaves a GPU
        // unknown, and `select_for` tests no such GPU.
        let self_pid = (!simulated).then(std::process::id);
        facts.device_holders = Some(crate::host::read_device_holders(
            &root,
            self_pid,
            crate::source::is_device_node,
        ));
        crate::operator::add_holder_processes(&mut facts, &root);
    }
    global.add_api_facts(&mut facts);
    let mut selection = select::select_for(&facts, &requested, GpuVendor::Amd);
    let tested = gpu_ids(&facts, &mut selection);

    let rvs = find_rvs(args.rvs.as_deref());
    let conf_dir = args
        .conf_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(request::CONF_DIR));
    let product = tested
        .first()
        .and_then(|t| facts.gpus.iter().find(|g| g.index == t.index))
        .and_then(|g| g.name.ok().cloned())
        .unwrap_or_default();
    let conf = find_conf(&conf_dir, &run, &product);
    let ids: Vec<u32> = tested.iter().map(|t| t.gpu_id).collect();
    let narrowed: Result<Narrowed, String> = match &conf {
        Ok(c) if !tested.is_empty() => read_conf(c).and_then(|text| recipe::narrow(&text, &ids)),
        Ok(_) => Err("no GPU to test".into()),
        Err(e) => Err(e.clone()),
    };
    let not_started = if tested.is_empty() {
        Some(
            if selection.skipped.iter().any(|s| s.why == "partitioned") {
                "no requested GPU can be tested: partitioned GPUs are not for AMD's test runner, and the others \
             are held or unknown (see not_tested)"
                .to_string()
            } else {
                selection
                    .nothing_to_test()
                    .unwrap_or_else(|| "no requested GPU can be tested (see not_tested)".into())
            },
        )
    } else if simulated && args.rvs.is_none() {
        Some(
            "a simulated node has no RVS to run; give --rvs PATH to replay one (tests/fake-rvs)"
                .into(),
        )
    } else if rvs.is_none() {
        Some(match &args.rvs {
            Some(p) => format!("--rvs {} is not a file", p.display()),
            None => "this pod's image has no rvs (not on PATH, no /opt/rocm/bin/rvs): the launcher runs the \
                     diagnostic in AMD's test runner image (rocm/test-runner) where the node lists it by \
                     digest"
                .into(),
        })
    } else if let Err(e) = &conf {
        Some(e.clone())
    } else {
        match &narrowed {
            Err(e) => Some(e.clone()),
            Ok(n) if n.actions.is_empty() => Some(format!(
                "every action of {} needs two or more GPUs and {} was selected: {}",
                run.recipe(),
                tested.len(),
                n.left_out.join("; ")
            )),
            Ok(_) => None,
        }
    };

    let started_unix = match (simulated, facts.host.now_unix.get()) {
        (true, Some(t)) => t,
        _ => now_unix(),
    };
    let mut raw = None;
    let (execution, results) = match (&not_started, &rvs, &narrowed) {
        (None, Some(rvs), Ok(narrowed)) => match private_dir().and_then(|dir| {
            let recipe = dir.join("recipe.conf");
            match write_private(&recipe, &narrowed.text) {
                Ok(()) => Ok((dir, recipe)),
                Err(e) => {
                    let _ = std::fs::remove_dir_all(&dir);
                    Err(e)
                }
            }
        }) {
            Err(e) => (
                None,
                Some(Err(format!(
                    "cannot write the run's recipe and result file in a private directory: {e}"
                ))),
            ),
            Ok((dir, recipe)) => {
                let json = dir.join("rvs.json");
                let argv =
                    request::rvs_args(&recipe.display().to_string(), &json.display().to_string());
                let ex = execute(
                    rvs,
                    &argv,
                    &[],
                    Duration::from_secs(deadline),
                    Duration::from_secs(args.stop_grace_secs),
                );
                let res = if ex.spawn_error.is_some() {
                    None
                } else {
                    Some(read_results(&json).map(|(r, text)| {
                        raw = Some(gpu_diag::dcgm::limits::clip_bytes(
                            &text,
                            gpu_diag::dcgm::limits::MAX_RAW_BYTES,
                        ));
                        r
                    }))
                };
                let _ = std::fs::remove_dir_all(&dir);
                (Some(ex), res)
            }
        },
        _ => (None, None),
    };
    let not_started = match (&execution, not_started, &results) {
        (None, None, Some(Err(e))) => Some(e.clone()),
        (_, n, _) => n,
    };
    let (plan, left_out) = match &narrowed {
        Ok(n) => (n.actions.clone(), n.left_out.clone()),
        Err(_) => (Vec::new(), Vec::new()),
    };
    let mut report = report::assemble(&RvsInput {
        run: &run,
        requested: &requested,
        selection: &selection,
        tested: &tested,
        plan: &plan,
        left_out: &left_out,
        execution: execution.as_ref(),
        not_started,
        results,
        conf: conf.ok().map(|c| c.display().to_string()),
        started_at: gpu_diag::kernel_log::time::rfc3339(started_unix),
    });
    report.raw_output = raw;
    Ok(ProbeDocument::success(
        Some(source::meta(&facts, global)),
        Report::RvsDiag(Box::new(report)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_platforms_recipe_comes_first_and_levels_need_one() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("MI300X/levels")).unwrap();
        std::fs::write(d.path().join("gst_single.conf"), "").unwrap();
        std::fs::write(d.path().join("MI300X/gst_single.conf"), "").unwrap();
        std::fs::write(d.path().join("MI300X/levels/rvs_level_2.conf"), "").unwrap();
        let mi300 = "AMD Instinct MI300X OAM";
        let gst = RvsRun::Recipe("gst_single");
        assert_eq!(
            find_conf(d.path(), &gst, mi300).unwrap(),
            d.path().join("MI300X/gst_single.conf")
        );
        assert_eq!(
            find_conf(d.path(), &gst, "AMD Instinct MI210").unwrap(),
            d.path().join("gst_single.conf")
        );
        assert!(find_conf(d.path(), &RvsRun::Level(2), mi300).is_ok());
        let e = find_conf(d.path(), &RvsRun::Level(2), "AMD Instinct MI210").unwrap_err();
        assert!(e.contains("no levels/rvs_level_2.conf"), "{e}");
    }
}
