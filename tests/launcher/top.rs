//! `k8s-gpu-mcp top` as a person uses it: the view runs in tmux (its own server, `-L`), keys are sent with
//! `send-keys` and the screen is read with `capture-pane`. The simulated node plays a time script whose values
//! name their own instant (GPU 0 draws 100 + 10·t W, is 20 + t % busy and 30 + t °C), so each frame read can
//! be checked against the script: every value on a row from the same instant, the instants in order, and the
//! kernel line of second 6 on screen only once it has happened. Each way of quitting leaves no node-probe
//! (the local runner's probe) behind.

mod common;
#[path = "../support/tmux.rs"]
mod tmux;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use tmux::Tmux;

/// The second at which the script's Xid arrives.
const XID_AT: u32 = 6;

/// The script: GPU 0's values step every second; GPU 4 falls off the bus at [`XID_AT`].
fn scenario(dir: &Path) -> PathBuf {
    let mut segments: Vec<serde_json::Value> = (0..60)
        .map(|t| {
            serde_json::json!({
                "gpus": [0], "from_s": t, "to_s": t + 1,
                "power_w": 100 + 10 * t, "util_pct": 20 + t, "temp_c": 30 + t,
            })
        })
        .collect();
    // NVML's answer for a GPU that fell off the bus (nvml.h: NVML_ERROR_GPU_IS_LOST).
    segments.push(serde_json::json!({
        "gpus": [4], "from_s": XID_AT, "unreadable": "NVML: GPU is lost (NVML_ERROR_GPU_IS_LOST)"
    }));
    let s = serde_json::json!({
        "scenario": "dgx-h100-healthy",
        "description": "top's frames follow this script",
        "timeline": {
            "segments": segments,
            // NVIDIA's own Xid 79 line as the open kernel module prints it (the corpus's
            // dgx-h100-watch-xid79 scenario carries the same line).
            "kernel_log": [{
                "at_s": XID_AT,
                "line": "4,1816,183920301570,-;NVRM: Xid (PCI:0000:9a:00): 79, pid=40138, name=python3, GPU has fallen off the bus."
            }]
        }
    });
    let p = dir.join("top-script.json");
    std::fs::write(&p, serde_json::to_vec_pretty(&s).unwrap()).unwrap();
    p
}

/// node-probe processes that run this test's script (the local runner's probes).
fn probes_of(script: &Path) -> Vec<String> {
    let out = Command::new("pgrep")
        .args(["-a", "-f", &format!("node-probe.*{}", script.display())])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

fn no_probes_within(script: &Path, secs: u64, how: &str) {
    let t = Instant::now();
    loop {
        let left = probes_of(script);
        if left.is_empty() {
            return;
        }
        assert!(
            t.elapsed() < Duration::from_secs(secs),
            "after {how}, node-probe still runs: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// GPU 0's row on a screen: (util %, power W, temp °C).
fn gpu0(screen: &str) -> Option<(u32, u32, u32)> {
    let line = screen
        .lines()
        .find(|l| l.split_whitespace().take(2).eq(["local", "0"]))?;
    let w: Vec<&str> = line.split_whitespace().collect();
    // NODE GPU [MODEL...] UTIL MEM POWER TEMP ...: find UTIL as the first word ending in %.
    let u = w.iter().position(|x| x.ends_with('%'))?;
    let util = w[u].trim_end_matches('%').parse().ok()?;
    let power = w.get(u + 2)?.split('/').next()?.parse().ok()?;
    let temp = w.get(u + 3)?.trim_end_matches('C').parse().ok()?;
    Some((util, power, temp))
}

/// `top` on `script` in tmux, `w`×`h`.
fn top(w: u16, h: u16, script: &Path, extra: &str) -> Tmux {
    Tmux::start(
        w,
        h,
        &format!(
            "{} --local --simulate {} --probe-bin {} top local --renew-seconds 120 {extra}",
            LAUNCHER,
            script.display(),
            node_probe().display()
        ),
        &[("RUST_LOG", "info")],
    )
}

#[test]
fn the_screen_follows_the_script_frame_by_frame_and_an_event_appears_when_it_happens() {
    let dir = tempfile::tempdir().unwrap();
    let script = scenario(dir.path());
    let tm = top(80, 24, &script, "");
    let mut seen: Vec<u32> = Vec::new();
    let mut frames = 0;
    let t = Instant::now();
    while seen.last().is_none_or(|&s| s < XID_AT + 3) {
        assert!(
            t.elapsed() < Duration::from_secs(40),
            "the script's second {} never showed: {seen:?}\n{}",
            XID_AT + 3,
            tm.screen()
        );
        let s = tm.screen();
        std::thread::sleep(Duration::from_millis(100));
        let Some((util, power, temp)) = gpu0(&s) else {
            continue;
        };
        frames += 1;
        // One instant per row: the three values name the same second of the script.
        let at = (power - 100) / 10;
        assert_eq!(
            (util, temp),
            (20 + at, 30 + at),
            "a row mixes instants:\n{s}"
        );
        // In order, never back.
        assert!(
            seen.last().is_none_or(|&l| at >= l),
            "{at} after {seen:?}:\n{s}"
        );
        if seen.last() != Some(&at) {
            seen.push(at);
        }
        // The Xid is on screen exactly from its second on.
        let shown = s.contains("Xid 79 on GPU 4");
        assert_eq!(shown, at >= XID_AT, "second {at}, Xid shown: {shown}:\n{s}");
        if shown {
            assert!(s.contains("CRITICAL"), "{s}");
            // GPU 4 is lost from then on, in NVML's words.
            assert!(
                s.lines()
                    .any(|l| l.starts_with("local") && l.contains("unreadable")),
                "{s}"
            );
        }
        // 80 columns: the keys' line is the last one, the header the first.
        assert!(
            s.lines().next().unwrap_or("").starts_with("top local"),
            "{s}"
        );
    }
    // Sampled every second and read every 100 ms: most seconds are seen, in order.
    assert!(seen.len() >= 6, "seconds seen: {seen:?} in {frames} frames");
    eprintln!("top followed seconds {seen:?} over {frames} frames");
    tm.keys(&["q"]);
    assert_eq!(
        tm.exited(10),
        Some(0),
        "q did not end the view:\n{}",
        tm.screen()
    );
    no_probes_within(&script, 5, "q");
}

#[test]
fn keys_sort_filter_pause_help_and_the_view_follows_a_resize() {
    let dir = tempfile::tempdir().unwrap();
    let script = scenario(dir.path());
    let tm = top(80, 24, &script, "");
    tm.until("GPU 0's row", 20, |s| gpu0(s).is_some());
    // Sort by power: GPU 0 draws the least, so it is the last row.
    tm.keys(&["p"]);
    let s = tm.until("sort: power", 5, |s| s.contains("sort: power"));
    let rows: Vec<&str> = s.lines().filter(|l| l.starts_with("local ")).collect();
    assert_eq!(rows.len(), 8, "{s}");
    assert!(
        rows[7].split_whitespace().nth(1) == Some("0"),
        "GPU 0 last by power:\n{s}"
    );
    // Filter to one GPU.
    tm.keys(&["/", "g", "p", "u", "Space", "3", "Enter"]);
    let s = tm.until("one row", 5, |s| {
        s.lines().filter(|l| l.starts_with("local ")).count() == 1
    });
    assert!(
        s.lines()
            .any(|l| l.split_whitespace().take(2).eq(["local", "3"])),
        "{s}"
    );
    tm.keys(&["Escape"]);
    tm.until("the filter cleared", 5, |s| {
        s.lines().filter(|l| l.starts_with("local ")).count() == 8
    });
    // Pause: the values stop while the samples keep coming; unpause: they move again.
    tm.keys(&["n", "Space"]);
    let s = tm.until("PAUSED", 5, |s| s.contains("PAUSED"));
    let frozen = gpu0(&s).expect("GPU 0 while paused");
    std::thread::sleep(Duration::from_millis(2500));
    let s = tm.screen();
    assert_eq!(gpu0(&s), Some(frozen), "values moved while paused:\n{s}");
    tm.keys(&["Space"]);
    let s = tm.until("values moving again", 5, |s| {
        !s.contains("PAUSED") && gpu0(s) != Some(frozen)
    });
    assert!(gpu0(&s).unwrap().1 > frozen.1, "{s}");
    // Help, and Esc closes it.
    tm.keys(&["?"]);
    tm.until("the help", 5, |s| {
        s.contains("quit (the probe pods are deleted)")
    });
    tm.keys(&["Escape"]);
    tm.until("the help closed", 5, |s| {
        !s.contains("quit (the probe pods are deleted)")
    });
    // Wider: the model and the rank take columns of their own.
    tm.tmux(&["resize-window", "-x", "140", "-y", "30"]);
    tm.until("the model column", 5, |s| {
        s.contains("MODEL") && s.contains("NVIDIA H100")
    });
    tm.tmux(&["resize-window", "-x", "80", "-y", "24"]);
    tm.until("80 columns again", 5, |s| !s.contains("MODEL"));
    // Ctrl-C quits as q does.
    tm.keys(&["C-c"]);
    assert_eq!(
        tm.exited(10),
        Some(0),
        "Ctrl-C did not end the view:\n{}",
        tm.screen()
    );
    no_probes_within(&script, 5, "Ctrl-C");
}

#[test]
fn sigterm_and_a_closed_terminal_leave_no_probe() {
    let dir = tempfile::tempdir().unwrap();
    let script = scenario(dir.path());
    // SIGTERM.
    let tm = top(80, 24, &script, "");
    tm.until("GPU 0's row", 20, |s| gpu0(s).is_some());
    assert!(!probes_of(&script).is_empty(), "the view's probe runs");
    let pid = tm.launcher_pid();
    tmux::kill(pid, "TERM");
    assert_eq!(tm.exited(10), Some(0), "SIGTERM did not end the view");
    no_probes_within(&script, 5, "SIGTERM");
    drop(tm);
    // The terminal closed: tmux's kill-session sends the pane SIGHUP.
    let tm = top(80, 24, &script, "");
    tm.until("GPU 0's row", 20, |s| gpu0(s).is_some());
    let pid = tm.launcher_pid();
    tm.tmux(&["kill-session"]);
    let t = Instant::now();
    while Path::new(&format!("/proc/{pid}")).exists() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the launcher outlived its terminal"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    no_probes_within(&script, 5, "SIGHUP");
}

#[test]
fn without_a_terminal_or_with_once_one_plain_frame() {
    let dir = tempfile::tempdir().unwrap();
    let script = scenario(dir.path());
    for extra in [&[][..], &["--once"][..]] {
        let t = Instant::now();
        let out = Command::new(LAUNCHER)
            .args(["--local", "--simulate"])
            .arg(&script)
            .arg("--probe-bin")
            .arg(node_probe())
            .args(["top", "local"])
            .args(extra)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.starts_with("top local  1 node(s) 8 GPU(s) every 1 s"),
            "{text}"
        );
        // The first sample: second 0 of the script.
        assert_eq!(gpu0(&text), Some((20, 100, 30)), "{text}");
        assert_eq!(
            text.lines().filter(|l| l.starts_with("local ")).count(),
            8,
            "{text}"
        );
        // No escape sequence, no keys' line: a frame for a file or a pipe.
        assert!(
            !text.contains('\u{1b}') && !text.contains("q quit"),
            "{text}"
        );
        assert!(t.elapsed() < Duration::from_secs(15), "{:?}", t.elapsed());
        no_probes_within(&script, 5, "a plain frame");
    }
}

/// A stall is a pattern over a window, not an instant: the view names it when the window that saw it ends
/// (the built-in hang script: every GPU pegged at 100% drawing idle power), and not before.
#[test]
fn a_stall_is_named_when_the_window_that_saw_it_ends() {
    let tm = Tmux::start(
        120,
        30,
        &format!(
            "{} --local --simulate dgx-h100-watch-hang --probe-bin {} top local --renew-seconds 10",
            LAUNCHER,
            node_probe().display()
        ),
        &[("RUST_LOG", "info")],
    );
    let t = Instant::now();
    let first = tm.until("the rows", 20, |s| s.contains("100%"));
    assert!(!first.contains("no progress"), "{first}");
    let s = tm.until("the window's pattern", 30, |s| s.contains("no progress"));
    // Named at the window's end (10 s of samples), not at its start.
    assert!(
        t.elapsed() >= Duration::from_secs(9),
        "{:?}:\n{s}",
        t.elapsed()
    );
    assert!(
        s.contains("WARNING no progress: all 8 GPU(s) in use"),
        "{s}"
    );
    tm.keys(&["q"]);
    assert_eq!(tm.exited(10), Some(0));
}
