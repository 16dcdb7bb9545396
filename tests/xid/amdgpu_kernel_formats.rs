//! The amdgpu grammar against the kernel's own format strings (`tests/xid/amdgpu/kernel-formats.tsv`):
//! each message is rendered as the kernel prints it (printf arguments, the dev_printk/DRM/pr_fmt prefix)
//! and the analysis must report the listed event on the listed GPU, or nothing for a look-alike. Where the
//! kernel tree is present, each format must still stand verbatim at its cited line, so a reworded message
//! fails here rather than silently going unread.

use std::path::PathBuf;

use gpu_diag::options::AnalysisOptions;
use gpu_diag::xid::report::{DecodedDetail, analyze};

use super::{dir, node};

/// The PCI id the rendered dev_printk lines carry.
const PCI: &str = "0000:c1:00.0";

struct Row {
    kernel: String,
    cite: String,
    call: String,
    func: String,
    format: String,
    args: Vec<String>,
    event: Option<String>,
    gpu: Option<String>,
}

fn rows() -> Vec<Row> {
    let text = std::fs::read_to_string(dir().join("kernel-formats.tsv")).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            assert_eq!(c.len(), 8, "8 tab-separated columns: {l:?}");
            let opt = |s: &str| (s != "-").then(|| s.to_string());
            Row {
                kernel: c[0].into(),
                cite: c[1].into(),
                call: c[2].into(),
                func: c[3].into(),
                format: c[4].into(),
                args: if c[5].is_empty() {
                    vec![]
                } else {
                    c[5].split('|').map(str::to_string).collect()
                },
                event: opt(c[6]),
                gpu: opt(c[7]).map(|g| if g == "dev" { PCI.to_string() } else { g }),
            }
        })
        .collect()
}

/// A printf-style rendering: `%%`, flags, width, length modifiers, and `s d i u x X p` conversions
/// (integers given in decimal in the TSV, printed as the conversion asks).
fn render(format: &str, args: &[String]) -> String {
    let mut out = String::new();
    let mut args = args.iter();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'%') {
            chars.next();
            out.push('%');
            continue;
        }
        let mut zero = false;
        let mut width = 0usize;
        while let Some(&f) = chars.peek() {
            match f {
                '0' if width == 0 => zero = true,
                '1'..='9' | '0' => width = width * 10 + f.to_digit(10).unwrap() as usize,
                '-' | '#' | '.' | 'l' | 'h' | 'z' => {}
                _ => break,
            }
            chars.next();
        }
        let conv = chars.next().expect("a conversion after %");
        let a = args
            .next()
            .unwrap_or_else(|| panic!("too few args for {format:?}"));
        let s = match conv {
            's' | 'p' => a.clone(),
            'd' | 'i' | 'u' => a.parse::<i64>().expect("integer arg").to_string(),
            'x' => format!("{:x}", a.parse::<u64>().expect("integer arg")),
            'X' => format!("{:X}", a.parse::<u64>().expect("integer arg")),
            other => panic!("conversion %{other} in {format:?}"),
        };
        let pad = width.saturating_sub(s.len());
        out.push_str(&(if zero { "0" } else { " " }).repeat(pad));
        out.push_str(&s);
    }
    assert!(args.next().is_none(), "too many args for {format:?}");
    out
}

/// The line(s) the kernel prints for a row, behind a dmesg timestamp.
fn printed(r: &Row) -> Vec<String> {
    let msg = render(&r.format, &r.args);
    let bodies = match r.call.as_str() {
        // amdgpu.h's dev_fmt adds `amdgpu: `; a Linux 7.0 log shows the device prefix alone.
        // Later kernels move such calls to drm_err/drm_info(adev_to_drm(adev), …), which print through
        // the same dev_printk with `[drm] ` (`[drm] *ERROR* `) first (include/drm/drm_print.h
        // `__drm_printk`): the device and the event must not change.
        "dev_err" | "dev_info" | "dev_warn" => vec![
            format!("amdgpu {PCI}: amdgpu: {msg}"),
            format!("amdgpu {PCI}: {msg}"),
            format!("amdgpu {PCI}: [drm] {msg}"),
            format!("amdgpu {PCI}: [drm] *ERROR* {msg}"),
        ],
        "drm_error" => vec![format!("[drm:{} [amdgpu]] *ERROR* {msg}", r.func)],
        "drm_warn" | "drm_info" => vec![format!("[drm] {msg}")],
        "pr_err" => vec![format!("amdgpu: {msg}")],
        "printk" => vec![msg],
        other => panic!("call {other} has no prefix here"),
    };
    bodies
        .into_iter()
        .map(|b| format!("[ 1234.567890] {b}"))
        .collect()
}

#[test]
fn kernel_formats_read_as_the_listed_events() {
    let rows = rows();
    assert!(rows.len() >= 60, "{}", rows.len());
    let mut failures = Vec::new();
    for r in &rows {
        for line in printed(r) {
            let rep = analyze(
                &node(&[PCI], vec![line.clone()]),
                &AnalysisOptions::default(),
            );
            let got: Vec<(Option<&str>, Option<&str>)> = rep
                .events
                .iter()
                .zip(&rep.event_details)
                .map(|(e, d)| {
                    let id = match &d.decoded {
                        Some(DecodedDetail::Amdgpu { event, .. }) => Some(event.as_str()),
                        _ => None,
                    };
                    (id, e.pci_bus_id.as_deref())
                })
                .collect();
            // Every reported id has its catalog entry (a mnemonic), so it has a severity and an action.
            if let Some(e) = rep.events.iter().find(|e| e.mnemonic.is_none()) {
                failures.push(format!(
                    "{} {}: {line:?} has no catalog entry: {e:?}",
                    r.kernel, r.cite
                ));
            }
            let want: Vec<(Option<&str>, Option<&str>)> = r
                .event
                .as_deref()
                .map(|e| (Some(e), r.gpu.as_deref()))
                .into_iter()
                .collect();
            if got != want {
                failures.push(format!(
                    "{} {}: {line:?}\n  want {want:?}\n  got  {got:?}",
                    r.kernel, r.cite
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} lines misread:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Where each kernel tree is: its env var, else the cache directory the fetch scripts fill.
fn tree(kernel: &str) -> Option<PathBuf> {
    let (var, name) = match kernel {
        "6.12" => ("K8S_GPU_MCP_LINUX_6_12", "linux-source-6.12"),
        "6.1" => ("K8S_GPU_MCP_LINUX_6_1", "linux-source-6.1"),
        _ => return None,
    };
    if let Some(v) = std::env::var_os(var).filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(v));
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(cache.join("k8s-gpu-mcp/upstream").join(name))
}

#[test]
fn kernel_formats_stand_verbatim_in_the_source() {
    let rows = rows();
    for kernel in ["6.12", "6.1"] {
        let Some(root) = tree(kernel).filter(|r| r.join("drivers/gpu/drm/amd").is_dir()) else {
            let fetch = if kernel == "6.1" {
                "tests/truth/fetch-linux-6.1.sh"
            } else {
                "tests/truth/fetch-upstream.sh"
            };
            super::gate::skip(&format!(
                "no Linux {kernel} tree at {} (set K8S_GPU_MCP_LINUX_{} or run {fetch}): the formats in \
                 kernel-formats.tsv were not checked against it",
                tree(kernel).map_or_else(|| "(no cache dir)".into(), |p| p.display().to_string()),
                kernel.replace('.', "_")
            ));
            continue;
        };
        let mut checked = 0;
        for r in rows.iter().filter(|r| r.kernel == kernel) {
            let (file, line) = r.cite.rsplit_once(':').expect("file:line");
            let line: usize = line
                .parse()
                .unwrap_or_else(|_| panic!("line of {}", r.cite));
            let path = root.join(file);
            let src = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e} (cited by {})", path.display(), r.cite));
            let at = src.lines().nth(line - 1).unwrap_or("");
            assert!(
                at.contains(&format!("\"{}", r.format)),
                "Linux {kernel} {}: the format {:?} is no longer at that line (it reads {at:?}); \
                 the message was reworded or moved: update kernel-formats.tsv and, if the words changed, \
                 the grammar",
                r.cite,
                r.format
            );
            checked += 1;
        }
        assert!(checked > 0, "no rows for Linux {kernel}");
        eprintln!(
            "Linux {kernel} at {}: {checked} formats verbatim",
            root.display()
        );
    }
}
