//! The NVIDIA Xid/SXid grammar against the driver's own print formats (`tests/xid/nvidia/
//! open-gpu-kernel-formats.tsv`, taken from NVIDIA/open-gpu-kernel-modules at the commit it names: no
//! package registry serves that source). Each format is printed with printf-style arguments, behind a
//! dmesg timestamp, and the analysis must decode the kind, the number, the PCI address, the process, the
//! MIG attribution, the root-cause Xid and the SXid's device, link and fatality the row lists.

use gpu_diag::facts::{KernelLogFacts, NodeFacts, Reading};
use gpu_diag::options::AnalysisOptions;
use gpu_diag::xid::contract::{DecodedDetail, EventKind};
use gpu_diag::xid::report::analyze;

const TSV: &str = include_str!("nvidia/open-gpu-kernel-formats.tsv");

/// printf for the conversions these formats use: `%s`, `%d`, `%u`, `%x` with a `0` flag and a width.
fn render(format: &str, args: &[&str]) -> String {
    let mut out = String::new();
    let mut args = args.iter();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let (mut zero, mut width) = (false, 0usize);
        while let Some(&f) = chars.peek() {
            match f {
                '0' if width == 0 => zero = true,
                '0'..='9' => width = width * 10 + f.to_digit(10).unwrap() as usize,
                _ => break,
            }
            chars.next();
        }
        let conv = chars.next().expect("a conversion after %");
        let a = args
            .next()
            .unwrap_or_else(|| panic!("too few args for {format:?}"));
        let s = match conv {
            's' => a.to_string(),
            'd' | 'u' => a.parse::<i64>().expect("integer arg").to_string(),
            'x' => format!("{:x}", a.parse::<u64>().expect("integer arg")),
            other => panic!("conversion %{other} in {format:?}"),
        };
        out.push_str(&(if zero { "0" } else { " " }).repeat(width.saturating_sub(s.len())));
        out.push_str(&s);
    }
    assert!(args.next().is_none(), "too many args for {format:?}");
    out
}

fn node(lines: Vec<String>) -> NodeFacts {
    let mut f = NodeFacts::default();
    f.host.boot_time_unix = Reading::Ok(1_795_247_940.0);
    f.host.now_unix = Reading::Ok(1_795_262_400.0);
    f.kernel_log = Reading::Ok(KernelLogFacts {
        origin: "kmsg".into(),
        lines,
        truncated: false,
    });
    f
}

#[test]
fn open_gpu_kernel_module_formats_decode_as_printed() {
    let rows: Vec<Vec<&str>> = TSV
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split('\t').collect())
        .collect();
    assert!(rows.len() >= 8, "{} rows", rows.len());
    let mut failures = Vec::new();
    for c in &rows {
        assert_eq!(c.len(), 14, "14 tab-separated columns: {c:?}");
        let opt = |s: &str| (s != "-").then(|| s.to_string());
        let num = |s: &str| opt(s).map(|v| v.parse::<u32>().expect("a number"));
        let args: Vec<&str> = c[2].split('|').collect();
        let line = format!("[ 1234.567890] {}", render(c[1], &args));
        let rep = analyze(&node(vec![line.clone()]), &AnalysisOptions::default());
        let [e] = rep.events.as_slice() else {
            failures.push(format!(
                "{}: {line:?} gave {} events",
                c[0],
                rep.events.len()
            ));
            continue;
        };
        let d = &rep.event_details[0];
        let kind = match c[3] {
            "xid" => EventKind::Xid,
            "sxid" => EventKind::Sxid,
            other => panic!("kind {other}"),
        };
        let sxid = match &d.decoded {
            Some(DecodedDetail::Sxid {
                device,
                fatal,
                link,
            }) => Some((device.clone(), *link, *fatal)),
            _ => None,
        };
        let want_sxid = (kind == EventKind::Sxid)
            .then(|| (opt(c[11]), num(c[12]), opt(c[13]).map(|f| f == "true")));
        let got = (
            e.kind,
            e.code,
            e.pci_bus_id.clone(),
            e.pid,
            e.process_name.clone(),
            e.gpu_instance_id,
            e.compute_instance_id,
            d.caused_by_xid,
            sxid,
        );
        let want = (
            kind,
            num(c[4]),
            opt(c[5]),
            num(c[6]),
            opt(c[7]),
            num(c[8]),
            num(c[9]),
            num(c[10]),
            want_sxid,
        );
        if got != want {
            failures.push(format!(
                "{}: {line:?}\n  want {want:?}\n  got  {got:?}",
                c[0]
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} lines misread:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
