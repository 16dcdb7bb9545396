//! Envelopes from the tools' own formatters, and every way a person cuts one from its left.
//!
//! Each row of `FORMATS` is one tool's layout of a kernel message, split into the fields a person cuts
//! (date, host, tag, stamp, …), with the upstream file and line that prints it. Every driver line of the
//! corpora is wrapped in every format, and every cut of it (the date gone, then the host, the tag, the
//! stamp): the analysis must find exactly the events the bare driver lines give, on the same lines. The
//! same lines quoted inside other programs' output must give none.
//!
//! Upstream revisions read: util-linux 39465c780eed56034ed1440068a2722fc3331343 (sys-utils/dmesg.c,
//! lib/timeutils.c); systemd-stable 252.39 (Debian bookworm's `systemd_252.39.orig.tar.gz`:
//! src/shared/logs-show.c, src/basic/time-util.c) and systemd main 002951ce222cc8a7823f9d0db355933319f4256f
//! (the later `short-iso` offset `%+03d:%02d`); Linux 6.12 (Debian linux-source-6.12 6.12.117-1~deb12u1,
//! kernel/printk/printk.c); mirror/busybox 371fe9f71d445d18be28c82a2a6d82115c8af19d (util-linux/dmesg.c);
//! rsyslog ee72adcd88541111236a2b217fe175f9f107f4e2 (tools/smtradfile.c, tools/smfile.c, runtime/rsconf.c,
//! plugins/imklog/imklog.c); syslog-ng b55e8d0b83333156d7bb423f47fba076a6bed111 (lib/logwriter.c);
//! siderolabs/talos (as `grammar/envelope.rs` cites it).

use std::path::Path;

use gpu_diag::facts::{KernelLogFacts, NodeFacts, Reading};
use gpu_diag::kernel_log::grammar::{Clock, records};
use gpu_diag::kernel_log::report::analyze;
use gpu_diag::options::AnalysisOptions;

/// One tool's layout: its name, where upstream prints it, and the fields before the driver's text, left
/// to right, each with the separator after it.
struct Format {
    name: &'static str,
    cite: &'static str,
    fields: &'static [&'static str],
}

const FORMATS: &[Format] = &[
    // util-linux dmesg.
    Format {
        name: "dmesg",
        cite: "util-linux sys-utils/dmesg.c:1241-1242 `[%5ld.%06ld] `",
        fields: &["[ 1234.567890] "],
    },
    Format {
        name: "dmesg, a boot-time stamp",
        cite: "util-linux sys-utils/dmesg.c:1241-1242 (`%5ld` pads)",
        fields: &["[    0.123456] "],
    },
    Format {
        name: "dmesg, a kernel with CONFIG_PRINTK_CALLER",
        cite: "util-linux sys-utils/dmesg.c:1311 `[%*s] `",
        fields: &["[ 1234.567890] ", "[  T1234] "],
    },
    Format {
        name: "dmesg -r",
        cite: "util-linux sys-utils/dmesg.c:1185-1186 `<%d>[%5ld.%06ld] `",
        fields: &["<3>", "[ 1234.567890] "],
    },
    Format {
        name: "dmesg -x",
        cite: "util-linux sys-utils/dmesg.c:1195 `%-6s:%-6s: `, then the time",
        fields: &["kern  :err   : ", "[ 1234.567890] "],
    },
    Format {
        name: "dmesg -x --notime",
        cite: "util-linux sys-utils/dmesg.c:1195, 1205-1206",
        fields: &["kern  :warn  : "],
    },
    Format {
        name: "dmesg -T",
        cite: "util-linux sys-utils/dmesg.c:1208-1210, 1076 `%a %b %e %H:%M:%S %Y`",
        fields: &["[Sat Nov 21 10:00:00 2026] "],
    },
    Format {
        name: "dmesg -T, a day below 10 (%e pads with a space)",
        cite: "util-linux sys-utils/dmesg.c:1076",
        fields: &["[Sun Nov  1 10:00:00 2026] "],
    },
    Format {
        name: "dmesg -x -T",
        cite: "util-linux sys-utils/dmesg.c:1195, 1208-1210",
        fields: &["kern  :err   : ", "[Sat Nov 21 10:00:00 2026] "],
    },
    Format {
        name: "dmesg -T -d",
        cite: "util-linux sys-utils/dmesg.c:1212-1215 `[%s <%12.06f>] `",
        fields: &["[Sat Nov 21 10:00:00 2026 <    0.000123>] "],
    },
    Format {
        name: "dmesg -d",
        cite: "util-linux sys-utils/dmesg.c:1246-1249 `[%5ld.%06ld <%12.06f>] `",
        fields: &["[ 1234.567890 <    0.000123>] "],
    },
    Format {
        name: "dmesg -t -d (delta alone)",
        cite: "util-linux sys-utils/dmesg.c:1217-1219 `[<%12.06f>] `",
        fields: &["[<    0.000123>] "],
    },
    Format {
        name: "dmesg -e, a minute's first line",
        cite: "util-linux sys-utils/dmesg.c:1227-1229, 1086 `%b%e %H:%M`",
        fields: &["[Nov21 10:00] "],
    },
    Format {
        name: "dmesg -e, a minute's first line, a day below 10",
        cite: "util-linux sys-utils/dmesg.c:1086",
        fields: &["[Nov 1 10:00] "],
    },
    Format {
        name: "dmesg -e, the lines after it",
        cite: "util-linux sys-utils/dmesg.c:1231-1236 `[  %+8.06f] `, `[ %+9.06f] `",
        fields: &["[  +0.000123] "],
    },
    Format {
        name: "dmesg -e, a delta of 10 s or more",
        cite: "util-linux sys-utils/dmesg.c:1234-1236",
        fields: &["[ +12.000123] "],
    },
    Format {
        name: "dmesg --time-format iso",
        cite: "util-linux sys-utils/dmesg.c:1252-1255, 1099; lib/timeutils.c:522-523 `,%06`, 534 `%+03d:%02d`",
        fields: &["2026-11-21T10:00:00,123456+00:00 "],
    },
    Format {
        name: "dmesg -x --time-format iso",
        cite: "util-linux sys-utils/dmesg.c:1195, 1252-1255",
        fields: &["kern  :err   : ", "2026-11-21T10:00:00,123456+01:00 "],
    },
    // The kernel's own syslog(2) buffer: busybox dmesg (and `dmesg -S`).
    Format {
        name: "busybox dmesg",
        cite: "Linux 6.12 kernel/printk/printk.c:1331-1335 `[%5lu.%06lu]`, 1365-1368 the space; busybox util-linux/dmesg.c:95-113 drops `<N>`",
        fields: &["[ 1234.567890] "],
    },
    Format {
        name: "busybox dmesg -r",
        cite: "Linux 6.12 kernel/printk/printk.c:1326-1328 `<%u>`; busybox util-linux/dmesg.c:115",
        fields: &["<4>", "[ 1234.567890] "],
    },
    Format {
        name: "busybox dmesg, a kernel with CONFIG_PRINTK_CALLER (no space before the caller)",
        cite: "Linux 6.12 kernel/printk/printk.c:1340-1346 `[%6s]`, 1363",
        fields: &["[ 1234.567890]", "[  T1234] "],
    },
    Format {
        name: "busybox dmesg -r, a kernel without CONFIG_PRINTK_TIME",
        cite: "Linux 6.12 kernel/printk/printk.c:1357-1358",
        fields: &["<3>"],
    },
    // journalctl's output modes.
    Format {
        name: "journalctl -o short",
        cite: "systemd 252.39 src/shared/logs-show.c:425 `%b %d %H:%M:%S`, 546 ` %s` host, 563 ` %s` identifier, 581 `: `",
        fields: &["Nov 21 10:00:00 ", "gpu-node-5 ", "kernel: "],
    },
    Format {
        name: "journalctl -o short-precise",
        cite: "systemd 252.39 src/shared/logs-show.c:425, 431 `.%06`",
        fields: &["Nov 01 10:00:00.123456 ", "gpu-node-5 ", "kernel: "],
    },
    Format {
        name: "journalctl -o short-iso (252)",
        cite: "systemd 252.39 src/shared/logs-show.c:404 `%Y-%m-%dT%H:%M:%S%z`",
        fields: &["2026-11-21T10:00:00+0000 ", "gpu-node-5 ", "kernel: "],
    },
    Format {
        name: "journalctl -o short-iso (later)",
        cite: "systemd main src/shared/logs-show.c output_timestamp_realtime `%+03d:%02d`",
        fields: &["2026-11-21T11:00:00+01:00 ", "gpu-node-5 ", "kernel: "],
    },
    Format {
        name: "journalctl -o short-iso-precise",
        cite: "systemd 252.39 src/shared/logs-show.c:414-419",
        fields: &[
            "2026-11-21T10:00:00.123456+0000 ",
            "gpu-node-5 ",
            "kernel: ",
        ],
    },
    Format {
        name: "journalctl -o short-full / with-unit",
        cite: "systemd 252.39 src/shared/logs-show.c:380-386; src/basic/time-util.c:368-392 `%a %Y-%m-%d %H:%M:%S %Z`",
        fields: &["Sat 2026-11-21 10:00:00 UTC ", "gpu-node-5 ", "kernel: "],
    },
    Format {
        name: "journalctl -o short-full, a local zone",
        cite: "systemd 252.39 src/basic/time-util.c:368-392",
        fields: &["Sat 2026-11-21 11:00:00 CET ", "gpu-node-5 ", "kernel: "],
    },
    Format {
        name: "journalctl -o short-unix",
        cite: "systemd 252.39 src/shared/logs-show.c:400 `%10ld.%06ld`",
        fields: &["1795250000.123456 ", "gpu-node-5 ", "kernel: "],
    },
    Format {
        name: "journalctl -o short-monotonic",
        cite: "systemd 252.39 src/shared/logs-show.c:338 `[%5lu.%06lu`, 359 `]`",
        fields: &["[ 1234.567890] ", "gpu-node-5 ", "kernel: "],
    },
    Format {
        name: "journalctl -o short-delta",
        cite: "systemd 252.39 src/shared/logs-show.c:338-359 ` <%5lu.%06lu%s>`",
        fields: &["[ 1234.567890 <    0.000123 >] ", "gpu-node-5 ", "kernel: "],
    },
    Format {
        name: "journalctl -o cat",
        cite: "systemd 252.39 src/shared/logs-show.c:1258 the MESSAGE field alone",
        fields: &[],
    },
    // Syslog daemons' default file templates.
    Format {
        name: "rsyslog RSYSLOG_TraditionalFileFormat",
        cite: "rsyslog tools/smtradfile.c:5 `%TIMESTAMP% %HOSTNAME% %syslogtag%%msg…`",
        fields: &["Nov  1 10:00:00 ", "gpu-node-5 ", "kernel: "],
    },
    Format {
        name: "rsyslog RSYSLOG_TraditionalFileFormat, imklog keeping the kernel's stamp",
        cite: "rsyslog tools/smtradfile.c:5; plugins/imklog/imklog.c:80 KeepKernelTimestamp, bsd.c:118",
        fields: &[
            "Nov 21 10:00:00 ",
            "gpu-node-5 ",
            "kernel: ",
            "[ 1234.567890] ",
        ],
    },
    Format {
        name: "rsyslog RSYSLOG_FileFormat",
        cite: "rsyslog tools/smfile.c:5 `%TIMESTAMP:::date-rfc3339% %HOSTNAME% %syslogtag%…`",
        fields: &[
            "2026-11-21T10:00:00.123456+00:00 ",
            "gpu-node-5 ",
            "kernel: ",
        ],
    },
    Format {
        name: "rsyslog RSYSLOG_SyslogProtocol23Format (its header is positional: cut whole or not at all)",
        cite: "rsyslog runtime/rsconf.c:210-212 `<%PRI%>1 %TIMESTAMP:::date-rfc3339% %HOSTNAME% %APP-NAME% %PROCID% %MSGID% %STRUCTURED-DATA% %msg%`",
        fields: &["<3>1 2026-11-21T10:00:00.123456+00:00 gpu-node-5 kernel - - - "],
    },
    Format {
        name: "syslog-ng file destination, default ts-format(rfc3164)",
        cite: "syslog-ng lib/logwriter.c:1064-1066 the stamp, 1080-1083 ` $HOST `, 1085-1103 `$PROGRAM[$PID]: `",
        fields: &["Nov 21 10:00:00 ", "gpu-node-5 ", "kernel: "],
    },
    Format {
        name: "syslog-ng file destination, ts-format(iso)",
        cite: "syslog-ng lib/logwriter.c:1064-1103",
        fields: &["2026-11-21T10:00:00+00:00 ", "gpu-node-5 ", "kernel: "],
    },
    // Talos.
    Format {
        name: "talosctl dmesg",
        cite: "siderolabs/talos internal/app/machined/internal/server/v1alpha1/v1alpha1_server.go Dmesg `%s: %7s: [%s]: %s`; cmd/talosctl/cmd/talos/dmesg.go `<node>: `",
        fields: &[
            "172.20.1.2: ",
            "kern: ",
            "    err: ",
            "[2026-11-21T10:00:00.123456789Z]: ",
        ],
    },
    // /dev/kmsg itself.
    Format {
        name: "/dev/kmsg",
        cite: "Linux Documentation/ABI/testing/dev-kmsg `prefix;message`",
        fields: &["3,1234,1234567890,-;"],
    },
];

/// Every cut of a format from its left: the whole line, then each field gone in turn, to the bare text.
fn cuts(f: &Format) -> impl Iterator<Item = String> + '_ {
    (0..=f.fields.len()).map(|i| f.fields[i..].concat())
}

/// The driver's single-line kernel messages in the corpora, bare, in file order, each once.
fn driver_lines() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kernel_log");
    let mut files: Vec<_> = ["corpus", "amdgpu", "public"]
        .iter()
        .flat_map(|d| std::fs::read_dir(root.join(d)).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for r in records(&lines, Clock::default()) {
            if r.kernel && !r.text.contains('\n') && !r.text.trim().is_empty() {
                let t = r.text.trim().to_string();
                if seen.insert(t.clone()) {
                    out.push(t);
                }
            }
        }
    }
    out
}

/// The events a log gives, each as its JSON less the time (which each envelope says differently, or not).
fn events(lines: Vec<String>) -> Vec<serde_json::Value> {
    let mut f = NodeFacts::default();
    f.host.boot_time_unix = Reading::Ok(1_795_247_940.0);
    f.host.now_unix = Reading::Ok(1_795_262_400.0);
    f.kernel_log = Reading::Ok(KernelLogFacts {
        origin: "file:envelopes".into(),
        lines,
        truncated: false,
    });
    let r = analyze(&f, &AnalysisOptions::default());
    assert_eq!(r.log.events_not_listed, 0, "a batch small enough to list");
    r.events
        .iter()
        .map(|e| {
            let mut v = serde_json::to_value(e).unwrap();
            v.as_object_mut().unwrap().remove("timestamp");
            v
        })
        .collect()
}

/// Batches small enough that every event is listed.
const BATCH: usize = 120;

#[test]
fn every_format_and_every_cut_gives_the_drivers_events() {
    let lines = driver_lines();
    assert!(
        lines.len() >= 150,
        "driver lines in the corpora: {}",
        lines.len()
    );
    let mut cases = 0usize;
    let mut want_total = 0usize;
    let mut failures = Vec::new();
    for batch in lines.chunks(BATCH) {
        let want = events(batch.to_vec());
        want_total += want.len();
        for f in FORMATS {
            for prefix in cuts(f) {
                let log: Vec<String> = batch.iter().map(|t| format!("{prefix}{t}")).collect();
                cases += log.len();
                let got = events(log);
                if got != want {
                    let first = want
                        .iter()
                        .zip(
                            got.iter()
                                .chain(std::iter::repeat(&serde_json::Value::Null)),
                        )
                        .find(|(w, g)| w != g)
                        .map(|(w, g)| format!("want {w}\n    got {g}"))
                        .unwrap_or_else(|| format!("{} extra events", got.len() - want.len()));
                    failures.push(format!(
                        "{} ({}), cut {prefix:?}: {} events, want {}; first difference:\n    {first}",
                        f.name,
                        f.cite,
                        got.len(),
                        want.len()
                    ));
                }
            }
        }
    }
    assert!(
        want_total >= 100,
        "events in the bare driver lines: {want_total}"
    );
    eprintln!("{cases} lines in {} formats and their cuts", FORMATS.len());
    assert!(
        failures.is_empty(),
        "{} of the format × cut logs misread:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Other programs' output that quotes a kernel line, as the programs print it.
const QUOTES: &[(&str, &str)] = &[
    (
        "rsyslog, another tag",
        "Nov 21 10:00:00 gpu-node-5 node-problem-detector[912]: {}",
    ),
    (
        "rsyslog ISO, another tag",
        "2026-11-21T10:00:00.123456+00:00 gpu-node-5 gpud[77]: {}",
    ),
    (
        "journalctl, a tag with no pid",
        "Nov 21 10:00:00 gpu-node-5 health-check: {}",
    ),
    ("a tag with its date and host cut", "myapp[123]: {}"),
    ("a tag with its date cut", "gpu-node-5 myapp[123]: {}"),
    (
        "journalctl -o short-monotonic, another tag",
        "[ 1234.567890] gpu-node-5 myapp[123]: {}",
    ),
    (
        "talosctl dmesg, facility user",
        "172.20.1.2: user: warning: [2026-11-21T10:00:00Z]: {}",
    ),
    (
        "dmesg -x, a userspace write",
        "user  :warn  : [ 1234.567890] {}",
    ),
    ("dmesg -r, a userspace write", "<12>[ 1234.567890] {}"),
    ("/dev/kmsg, a userspace write", "12,99,5000000,-;{}"),
    (
        "glog",
        "I0501 12:00:00.000000       1 log_monitor.go:160] New status: {}",
    ),
    (
        "Go slog text",
        "2026/05/11 10:35:49 INFO Found condition message={}",
    ),
    (
        "a Go test's t.Log",
        "    syslog_health_monitor_test.go:158: Waiting for: {}",
    ),
    (
        "kubectl logs --prefix",
        "[pod/dcgm-exporter-abc12/exporter] {}",
    ),
    ("logfmt", "2026-11-21T10:00:00Z level=info msg=\"{}\""),
    ("prose", "the kernel said: {}"),
];

#[test]
fn a_quote_in_another_programs_output_is_no_event() {
    let lines = driver_lines();
    let mut failures = Vec::new();
    let mut cases = 0usize;
    for batch in lines.chunks(BATCH) {
        for f in FORMATS {
            for prefix in cuts(f) {
                for (name, quote) in QUOTES {
                    let log: Vec<String> = batch
                        .iter()
                        .map(|t| quote.replace("{}", &format!("{prefix}{t}")))
                        .collect();
                    cases += log.len();
                    let got = events(log);
                    if let Some(e) = got.first() {
                        failures.push(format!(
                            "{name} quoting {} (cut {prefix:?}): {} events, first {e}",
                            f.name,
                            got.len()
                        ));
                    }
                }
            }
        }
    }
    eprintln!("{cases} quoted lines");
    assert!(
        failures.is_empty(),
        "{} quoting logs gave events:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
