//! The `k8s-gpu-mcp` command line: `version`, `call` (same code path as MCP), and clear startup failures.

mod common;
#[path = "../support/host_history.rs"]
mod host_history;

use std::process::Command;

use common::*;
use serde_json::Value;

fn launcher(args: &[&str]) -> std::process::Output {
    Command::new(LAUNCHER)
        .args(["--local", "--simulate", &main_scenario(), "--probe-bin"])
        .arg(node_probe())
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run k8s-gpu-mcp")
}

#[test]
fn version_prints_name_and_version() {
    let out = Command::new(LAUNCHER).arg("version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("k8s-gpu-mcp {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn call_prints_the_structured_result_as_json() {
    let out = launcher(&[
        "call",
        "get_gpu_health",
        "--arg",
        "node_name=local",
        "--arg",
        "expect_gpus=8",
        "--output",
        "json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("stdout is one JSON document");
    assert_eq!(v["node"], "local");
    assert_eq!(v["run"]["ran_in"], "local");
    assert!(v.get("report").is_some());
}

/// `call --progress` prints every step of the probe run once, in order, before the answer is printed
/// (issue 43: they came out of order and two were missing). Ten runs, since the order was a race.
/// `--driver-root` reaches node-probe's argv as its `--driver-root`, normalized (a wrapper records the argv);
/// a bad one is refused naming the flag before node-probe ever runs.
#[test]
fn driver_root_reaches_node_probe_and_a_bad_one_never_starts_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("argv.log");
    let probe = fake_probe(
        dir.path(),
        "recording-probe",
        &format!(
            "printf '%s\\n' \"$@\" >> '{}'\nexec '{}' \"$@\"",
            log.display(),
            node_probe().display()
        ),
    );
    let run = |root: &str| {
        Command::new(LAUNCHER)
            .args(["--local", "--simulate", &main_scenario(), "--probe-bin"])
            .arg(&probe)
            .args(["--driver-root", root])
            .args(["call", "get_gpu_health", "--arg", "node_name=local"])
            .env("RUST_LOG", "warn")
            .output()
            .expect("run k8s-gpu-mcp")
    };
    let out = run("/opt//nvidia/./lib64/");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let argv = std::fs::read_to_string(&log).unwrap();
    let argv: Vec<&str> = argv.lines().collect();
    assert!(
        argv.windows(2)
            .any(|w| w == ["--driver-root", "/opt/nvidia/lib64"]),
        "{argv:?}"
    );
    for (bad, why) in [
        ("lib64", "absolute path"),
        ("/opt/../../etc", "`..`"),
        ("/proc/1/root/usr/lib64", "/proc"),
    ] {
        std::fs::remove_file(&log).unwrap_or(());
        let out = run(bad);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{bad}: {err}");
        assert!(
            err.contains("--driver-root") && err.contains(why),
            "{bad}: {err}"
        );
        assert!(!log.exists(), "{bad}: node-probe ran");
    }
}

#[test]
fn call_prints_every_progress_step_in_order() {
    for _ in 0..10 {
        let out = launcher(&[
            "call",
            "get_gpu_health",
            "--arg",
            "node_name=local",
            "--progress",
        ]);
        assert!(out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        let steps: Vec<&str> = err.lines().filter(|l| l.starts_with('[')).collect();
        assert_eq!(
            steps,
            [
                "[1/5] starting probe for node local",
                "[2/5] waiting for the probe on local to start",
                "[3/5] probing local",
                "[4/5] cleaning up the probe on local",
                "[5/5] done: local",
            ],
            "{err}"
        );
        // Without the flag and with stderr not a terminal: no progress lines.
        let quiet = launcher(&["call", "get_gpu_health", "--arg", "node_name=local"]);
        assert!(!String::from_utf8_lossy(&quiet.stderr).contains("[1/5]"));
    }
}

/// A tool error with `--output json`: exit 1, the error on stderr, and one JSON document on stdout (scripts
/// that parse stdout never get an empty one).
#[test]
fn call_json_output_prints_the_error_document_on_tool_errors() {
    let out = launcher(&[
        "call",
        "get_gpu_health",
        "--arg",
        "node_name=gpu-node-5",
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).expect("stdout is one JSON document");
    assert_eq!(v["is_error"], true, "{v:#}");
    assert_eq!(v["tool"], "get_gpu_health");
    let err = v["error"].as_str().unwrap_or_default();
    assert!(err.contains("gpu-node-5") && err.contains("local"), "{err}");
    assert!(String::from_utf8_lossy(&out.stderr).contains(err));
}

#[test]
fn call_text_output_and_json_arguments() {
    let out = launcher(&[
        "call",
        "analyze_xid_errors",
        "--json",
        r#"{"node_name":"local"}"#,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("XID analysis of node local"), "{text}");
}

#[test]
fn call_exits_non_zero_with_the_tool_error() {
    let out = launcher(&["call", "get_gpu_health", "--arg", "node_name=Not_A_Node"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a valid node name"));

    let out = launcher(&[
        "call",
        "get_pod_gpu_allocation",
        "--arg",
        "node_name=gpu-node-5",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("local mode"));
}

#[test]
fn call_rejects_unknown_tools_and_malformed_arguments() {
    let out = launcher(&["call", "reset_gpu", "--arg", "node_name=local"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown tool `reset_gpu`"));

    let out = launcher(&["call", "get_gpu_health", "--arg", "node_name"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("key=value"));

    let out = launcher(&["call", "get_gpu_health", "--json", "[1]"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("JSON object"));
}

#[test]
fn call_list_names_the_tools() {
    let out = launcher(&["call", "list"]);
    assert!(out.status.success());
    let names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect();
    // The plain list names what the JSON one describes, and the tools every server has are in it.
    let mut described = tools::read_only_tools(LAUNCHER);
    let mut plain = names.clone();
    plain.sort();
    described.sort();
    assert_eq!(plain, described);
    assert!(names.contains(&"scan_gpu_nodes".to_string()));
    assert!(names.contains(&"check_cluster".to_string()));
}

/// The tool names written in backticks (`get_gpu_health`) in `text`, sorted, each once.
fn backticked_tool_names(text: &str) -> Vec<String> {
    let re = regex::Regex::new(r"`([a-z][a-z0-9]*(?:_[a-z0-9]+)+)`").unwrap();
    let mut n: Vec<String> = re.captures_iter(text).map(|c| c[1].to_string()).collect();
    n.sort();
    n.dedup();
    n
}

/// The README's two tool lists are written by hand: they must name exactly the registered tools
/// (launcher/src/mcp/tools/mod.rs), read-only and operator.
#[test]
fn readme_lists_exactly_the_registered_tools() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let between = |start: &str, end: &str| -> String {
        let i = readme
            .find(start)
            .unwrap_or_else(|| panic!("README.md has no {start:?}"))
            + start.len();
        let j = readme[i..]
            .find(end)
            .unwrap_or_else(|| panic!("README.md has no {end:?} after {start:?}"));
        readme[i..i + j].to_string()
    };
    const RO: &str = "Tools (all read-only):";
    const OP: &str = "Operator tools (only with `--mode operator`):";
    assert_eq!(
        backticked_tool_names(&between(RO, OP)),
        tools::read_only_tools(LAUNCHER),
        "README.md's read-only tool list (after {RO:?})"
    );
    assert_eq!(
        backticked_tool_names(&between(OP, ";")),
        tools::operator_only_tools(LAUNCHER),
        "README.md's operator tool list (after {OP:?}, up to the `;`)"
    );
}

#[test]
fn missing_probe_binary_is_a_clear_startup_error() {
    let out = Command::new(LAUNCHER)
        .args(["--local", "--probe-bin", "/nonexistent/node-probe", "serve"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "stdout must carry only MCP");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--probe-bin /nonexistent/node-probe"));
}

#[test]
fn cluster_mode_without_a_usable_cluster_fails_clearly() {
    let out = Command::new(LAUNCHER)
        .args([
            "--kubeconfig",
            "/nonexistent/kubeconfig",
            "call",
            "list_gpu_nodes",
        ])
        .env_remove("KUBECONFIG")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert!(!String::from_utf8_lossy(&out.stderr).trim().is_empty());
}

/// `analyze_xid_errors since=7d` on a host whose journal holds earlier boots (local mode, the probe
/// pointed at the host root through NODE_PROBE_HOST_ROOT): the previous boot's Xid 79 and its GPU
/// are named; a host with no history answers as before and says so.
#[test]
fn analyze_xid_errors_since_7d_names_the_previous_boot() {
    let run = |h: &host_history::Host| {
        let out = Command::new(LAUNCHER)
            .args(["--local", "--probe-bin"])
            .arg(node_probe())
            .args([
                "call",
                "analyze_xid_errors",
                "--arg",
                "node_name=local",
                "--arg",
                "since=7d",
            ])
            .env("NODE_PROBE_HOST_ROOT", h.path())
            .env("RUST_LOG", "warn")
            .output()
            .expect("run k8s-gpu-mcp");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let h = host_history::Host::new();
    host_history::make_journal(
        &h.journal_export(),
        // Where systemd-journal-remote itself keeps what it receives: not a machine-id folder.
        &h.path()
            .join("var/log/journal/remote/remote-gpu-node-5.journal"),
    );
    let text = run(&h);
    let line = text
        .lines()
        .find(|l| l.contains("history.previous_boot"))
        .unwrap_or_else(|| panic!("no previous-boot finding in:\n{text}"));
    assert!(
        line.contains("Xid 79") && line.contains("0000:9a:00.0"),
        "{line}"
    );
    assert!(text.contains("history.repeat_offender"), "{text}");

    let empty = host_history::Host::new();
    let text = run(&empty);
    assert!(text.contains("no history found"), "{text}");
    assert!(!text.contains("history.previous_boot"), "{text}");
}

#[test]
fn completions_and_man_page_come_from_the_cli_definition() {
    let bash = Command::new(LAUNCHER)
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert!(bash.status.success());
    let bash = String::from_utf8_lossy(&bash.stdout);
    for word in ["check", "setup", "--probe-image", "--kubeconfig"] {
        assert!(bash.contains(word), "bash completion lacks {word}");
    }
    let man = Command::new(LAUNCHER).arg("man").output().unwrap();
    assert!(man.status.success());
    let man = String::from_utf8_lossy(&man.stdout);
    assert!(man.contains(".TH k8s-gpu-mcp 1"), "not a roff man page");
    assert!(
        man.contains("k8s\\-gpu\\-mcp\\-check(1)"),
        "no check subcommand in the man page"
    );
    let bad = Command::new(LAUNCHER)
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
}

#[test]
fn setup_prints_manifests_and_host_snippets_without_a_cluster() {
    let out = Command::new(LAUNCHER)
        .args([
            "--kubeconfig",
            "/nonexistent/kubeconfig",
            "--namespace",
            "gpu-probes",
        ])
        .args(["setup", "--only", "manifests"])
        .env_remove("KUBECONFIG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let yaml = String::from_utf8_lossy(&out.stdout);
    assert!(yaml.contains("name: gpu-probes"), "{yaml}");
    assert!(yaml.contains("pod-security.kubernetes.io/enforce: privileged"));
    assert!(yaml.contains("name: k8s-gpu-mcp-probe"));
    assert!(!yaml.contains("name: gpu-diagnostics"), "{yaml}");
    let out = Command::new(LAUNCHER)
        .args([
            "--kubeconfig",
            "/nonexistent/kubeconfig",
            "setup",
            "--only",
            "hosts",
        ])
        .env_remove("KUBECONFIG")
        .output()
        .unwrap();
    let hosts = String::from_utf8_lossy(&out.stdout);
    let exe = std::fs::canonicalize(LAUNCHER).unwrap();
    assert!(
        hosts.contains(&format!("\"command\": \"{}\"", exe.display())),
        "{hosts}"
    );
    assert!(
        hosts.contains("claude mcp add --scope user k8s-gpu -- "),
        "{hosts}"
    );
}

/// The repository's files and folders (relative, `/`-separated), without build output and VCS data.
fn repo_paths(root: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if matches!(name.as_str(), ".git" | "target" | "node_modules") {
                continue;
            }
            let path = e.path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            // Links are listed (launcher/deploy) but not followed.
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path);
                out.push(format!("{rel}/"));
            } else {
                out.push(rel);
            }
        }
    }
    out
}

/// The paths `doc` names that do not exist, and how many it names (`rooted_only`: only those written from
/// the repository root): a backticked name that is a path from
/// the repository root (`launcher/src/probe/pod.rs`, `tests/kernel_log/`) must be there, and one written relative
/// to the section's folder (`probe/pod.rs`, `mcp/framework/`, `trust.rs`) must be the end of a path that
/// is. `::item` suffixes are ignored; a `<placeholder>` file name needs only its folder.
fn missing_paths(
    root: &std::path::Path,
    paths: &[String],
    doc: &str,
    rooted_only: bool,
) -> (Vec<String>, usize) {
    let doc = std::fs::read_to_string(root.join(doc)).unwrap();
    const ROOTS: [&str; 10] = [
        "docs/",
        "launcher/",
        "src/",
        "node-probe/",
        "tests/",
        "deploy/",
        "packaging/",
        "snapshots/",
        "benches/",
        "fuzz/",
    ];
    let mut checked = 0;
    let mut missing = Vec::new();
    for (i, span) in doc.split('`').enumerate() {
        // Odd pieces are inside backticks; names with spaces or URL schemes are not paths.
        if i % 2 == 0 || span.contains([' ', '{']) || span.contains("://") {
            continue;
        }
        let name = span.split("::").next().unwrap();
        let rooted = ROOTS.iter().any(|r| name.starts_with(r));
        // Flags (`--host-root=/`) and image sources (`docker.io/library/`) are not files here.
        let host = name.contains('/') && name.split('/').next().unwrap().contains('.');
        let generated = name.contains("node_modules");
        if !(rooted || !rooted_only && (name.ends_with(".rs") || name.ends_with('/')))
            || name.contains('=')
            || host
            || generated
        {
            continue;
        }
        // `launcher/src/mcp/tools/<name>.rs`: the folder it goes in.
        let name = match name.find('<') {
            Some(at) => &name[..=name[..at].rfind('/').unwrap_or(0)],
            None => name,
        };
        // `src/scenarios/*.json`: the folder.
        let name = match name.find('*') {
            Some(at) => &name[..=name[..at].rfind('/').unwrap_or(0)],
            None => name,
        };
        checked += 1;
        let found = if rooted {
            paths
                .iter()
                .any(|p| p == name || p.trim_end_matches('/') == name)
        } else {
            paths
                .iter()
                .any(|p| p == name || p.ends_with(&format!("/{name}")))
        };
        if !found {
            missing.push(span.to_string());
        }
    }
    (missing, checked)
}

/// Every path ARCHITECTURE.md (its code map and its "where things go" recipes), SECURITY.md and the README
/// name exists, so the docs cannot drift from the folders.
#[test]
fn docs_name_only_paths_that_exist() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let paths = repo_paths(&root);
    // The README also names folders a run makes (`target/soak/`) and placeholders: its paths from the
    // repository root only.
    for (doc, rooted_only) in [
        ("ARCHITECTURE.md", false),
        ("SECURITY.md", false),
        ("README.md", true),
    ] {
        let (missing, checked) = missing_paths(&root, &paths, doc, rooted_only);
        // The README is short and points into docs/, which holds most of its paths now.
        let least = if doc == "README.md" { 0 } else { 10 };
        assert!(checked > least, "{doc} names paths; read {checked}");
        assert!(
            missing.is_empty(),
            "{doc} names paths that do not exist (moved or renamed?): {missing:?}"
        );
    }
    // docs/: what moved out of the README (testbed, performance, delivery, ...), paths from the root.
    let mut read = 0;
    for e in std::fs::read_dir(root.join("docs")).unwrap().flatten() {
        let doc = format!("docs/{}", e.file_name().to_string_lossy());
        let (missing, checked) = missing_paths(&root, &paths, &doc, true);
        read += checked;
        assert!(
            missing.is_empty(),
            "{doc} names paths that do not exist (moved or renamed?): {missing:?}"
        );
    }
    assert!(read > 10, "docs/ names paths; read {read}");
}

/// The markdown files a user reads: the README, the docs, and every README under deploy/ and packaging/.
fn user_docs(root: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut docs: Vec<_> = ["README.md", "ARCHITECTURE.md", "SECURITY.md"]
        .iter()
        .map(|d| root.join(d))
        .filter(|d| d.is_file())
        .collect();
    let mut dirs = vec![
        root.join("docs"),
        root.join("deploy"),
        root.join("packaging"),
    ];
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() && !p.ends_with("node_modules") {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "md") {
                docs.push(p);
            }
        }
    }
    docs.sort();
    docs
}

/// Splits a shell command line into words as sh would for the plain cases the docs use (single and double
/// quotes, backslash-newline already joined), stopping at the first operator or comment.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    cur.push(q);
                }
            }
            '"' => {
                in_word = true;
                while let Some(q) = chars.next() {
                    match q {
                        '"' => break,
                        '\\' => cur.extend(chars.next()),
                        _ => cur.push(q),
                    }
                }
            }
            ' ' | '\t' => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '|' | '>' | '<' | ';' | '&' | '#' if !in_word || c != '#' => break,
            _ => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

/// The command lines of `k8s-gpu-mcp` and `node-probe` a doc shows, in code blocks and in inline code: each
/// as (binary, its arguments, where). Lines with placeholders (`<command>`, `…`) are not commands.
fn doc_command_lines(root: &std::path::Path) -> Vec<(String, Vec<String>, String)> {
    let mut found = Vec::new();
    for doc in user_docs(root) {
        let text = std::fs::read_to_string(&doc).unwrap();
        let rel = doc.strip_prefix(root).unwrap().display().to_string();
        let mut in_block = false;
        let mut skipping = false;
        let mut candidates: Vec<(usize, String)> = Vec::new();
        let mut pending = String::new();
        for (i, line) in text.lines().enumerate() {
            if let Some(info) = line.trim_start().strip_prefix("```") {
                // A block of another language (`text`: a file listing, `json`, `yaml`) holds no command.
                if in_block || skipping {
                    (in_block, skipping) = (false, false);
                } else if ["", "bash", "sh", "shell", "console"].contains(&info.trim()) {
                    in_block = true;
                } else {
                    skipping = true;
                }
                continue;
            }
            if skipping {
                continue;
            }
            if in_block {
                // A continued line (`\` at the end) is one command.
                if let Some(head) = line.strip_suffix('\\') {
                    pending.push_str(head);
                    continue;
                }
                pending.push_str(line);
                candidates.push((i + 1, std::mem::take(&mut pending)));
            } else {
                for (k, span) in line.split('`').enumerate() {
                    if k % 2 == 1 {
                        candidates.push((i + 1, span.to_string()));
                    }
                }
            }
        }
        for (line_no, line) in candidates {
            if ["<", "…", "...", "[", "{"].iter().any(|p| line.contains(p)) {
                continue;
            }
            // The command may follow `&&`, `-- ` (claude mcp add, cargo run) or a path.
            for segment in line.split("&& ") {
                let words = shell_words(segment);
                let Some(at) = words.iter().position(|w| {
                    let base = w.rsplit('/').next().unwrap_or(w);
                    base == "k8s-gpu-mcp" || base == "node-probe"
                }) else {
                    continue;
                };
                // The binary must be what runs: first (after `VAR=value`, `exec`, `sudo`) or after `--`;
                // not an argument of `rm`, `install`, `cargo install --path node-probe`, ...
                let runs = words[..at]
                    .iter()
                    .all(|w| w.contains('=') || w == "exec" || w == "sudo")
                    || words[at - 1] == "--";
                let cargo = words[..at].iter().any(|w| w == "cargo");
                if !runs && !cargo {
                    continue;
                }
                // `cargo run -p node-probe -- ARGS` and `claude mcp add … -- CMD ARGS`.
                let (bin, args) = if words[..at].iter().any(|w| w == "cargo") {
                    match words.iter().position(|w| w == "--") {
                        Some(dd) => ("node-probe".to_string(), words[dd + 1..].to_vec()),
                        None => continue,
                    }
                } else {
                    let base = words[at].rsplit('/').next().unwrap().to_string();
                    (base, words[at + 1..].to_vec())
                };
                if args.is_empty() {
                    continue;
                }
                found.push((bin, args, format!("{rel}:{line_no}")));
            }
        }
    }
    found
}

/// Every `k8s-gpu-mcp …` and `node-probe …` command line the docs show parses with the real command line:
/// each is run with `--help` appended, which clap answers only after every subcommand, flag and value before
/// it was accepted (an unknown flag, a bad value or a wrong subcommand fails first). What `--help` does not
/// check: a required argument left out.
#[test]
fn every_command_line_in_the_docs_parses() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let lines = doc_command_lines(&root);
    let probe = node_probe();
    let mut failed = Vec::new();
    for (bin, args, at) in &lines {
        let exe = if bin == "node-probe" {
            probe.clone()
        } else {
            std::path::PathBuf::from(LAUNCHER)
        };
        let out = Command::new(&exe)
            .args(args)
            .arg("--help")
            .env("RUST_LOG", "off")
            .output()
            .unwrap();
        if !out.status.success() {
            failed.push(format!(
                "{at}: {bin} {}\n  {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    let launcher_lines = lines.iter().filter(|l| l.0 == "k8s-gpu-mcp").count();
    let probe_lines = lines.len() - launcher_lines;
    assert!(
        launcher_lines >= 15 && probe_lines >= 2,
        "found too few command lines in the docs ({launcher_lines} launcher, {probe_lines} node-probe): {lines:?}"
    );
    assert!(
        failed.is_empty(),
        "command lines in the docs the real CLI rejects:\n{}",
        failed.join("\n")
    );
}

/// The splitter and the extractor themselves: a bad flag in a doc line would be found.
#[test]
fn doc_command_line_extraction_finds_what_a_user_would_paste() {
    assert_eq!(
        shell_words("k8s-gpu-mcp --context 'a b' call x --json '{\"k\":1}' | jq . # c"),
        [
            "k8s-gpu-mcp",
            "--context",
            "a b",
            "call",
            "x",
            "--json",
            "{\"k\":1}"
        ]
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("README.md"),
        "```bash\ncargo build && target/debug/k8s-gpu-mcp --local \\\n  call list\n```\n\
         Run `node-probe xid --since 2h` or `node-probe <command>`.\n\
         ```\nclaude mcp add k -- /x/k8s-gpu-mcp serve --no-such-flag\n\
         rm ~/.cargo/bin/k8s-gpu-mcp ~/.cargo/bin/node-probe\n```\n\
         ```text\nk8s-gpu-mcp    the launcher\n```\n",
    )
    .unwrap();
    let lines = doc_command_lines(dir.path());
    let shown: Vec<String> = lines
        .iter()
        .map(|(b, a, _)| format!("{b} {}", a.join(" ")))
        .collect();
    assert_eq!(
        shown,
        [
            "k8s-gpu-mcp --local call list",
            "node-probe xid --since 2h",
            "k8s-gpu-mcp serve --no-such-flag"
        ]
    );
    let out = Command::new(LAUNCHER)
        .args(["serve", "--no-such-flag", "--help"])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "an unknown flag before --help must fail"
    );
}

/// The text of every string literal of a Rust source, up to its `#[cfg(test)]` (tests name tools that do
/// not exist on purpose); comments are skipped, raw strings read whole, char literals (`'"'`) stepped over.
fn string_literals(src: &str) -> Vec<String> {
    let src = src.split("#[cfg(test)]").next().unwrap_or("");
    let b: Vec<char> = src.chars().collect();
    let (mut out, mut i) = (Vec::new(), 0);
    let at = |i: usize, s: &str| s.chars().enumerate().all(|(k, c)| b.get(i + k) == Some(&c));
    while i < b.len() {
        let c = b[i];
        if at(i, "//") {
            i = (i..b.len()).find(|&k| b[k] == '\n').unwrap_or(b.len());
        } else if at(i, "/*") {
            i = (i + 2..b.len())
                .find(|&k| at(k, "*/"))
                .map_or(b.len(), |k| k + 2);
        } else if c == 'r'
            && matches!(b.get(i + 1), Some('#' | '"'))
            && (i == 0 || !(b[i - 1].is_alphanumeric() || b[i - 1] == '_'))
        {
            let hashes = b[i + 1..].iter().take_while(|&&c| c == '#').count();
            let open = i + 1 + hashes;
            if b.get(open) != Some(&'"') {
                i += 1;
                continue;
            }
            let close: String = std::iter::once('"')
                .chain("#".repeat(hashes).chars())
                .collect();
            let end = (open + 1..b.len())
                .find(|&k| at(k, &close))
                .unwrap_or(b.len());
            out.push(b[open + 1..end].iter().collect());
            i = end + close.len();
        } else if c == '"' {
            let mut s = String::new();
            i += 1;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' {
                    i += 1;
                } else {
                    s.push(b[i]);
                }
                i += 1;
            }
            out.push(s);
            i += 1;
        } else if c == '\'' && b.get(i + 1) == Some(&'\\') {
            i = (i + 2..b.len())
                .find(|&k| b[k] == '\'')
                .map_or(b.len(), |k| k + 1);
        } else if c == '\'' && b.get(i + 2) == Some(&'\'') {
            i += 3;
        } else {
            i += 1;
        }
    }
    out
}

/// Every tool an answer's text names exists: a finding's or an action's sentence (a string literal with a
/// space in it, in the library, the launcher or node-probe) that names a tool-shaped word (a registered
/// tool's verb, then a registered tool's noun: `get_xid_errors`) names a registered tool.
#[test]
fn every_tool_an_answer_names_is_registered() {
    let mut all = tools::read_only_tools(LAUNCHER);
    all.extend(tools::operator_only_tools(LAUNCHER));
    let verbs: Vec<&str> = all.iter().filter_map(|t| t.split('_').next()).collect();
    let nouns: Vec<&str> = all.iter().flat_map(|t| t.split('_').skip(1)).collect();
    let word = regex::Regex::new(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b").unwrap();
    let root = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    let mut files = Vec::new();
    let mut dirs: Vec<std::path::PathBuf> = ["src", "launcher/src", "node-probe/src"]
        .iter()
        .map(|d| root.join(d))
        .collect();
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs")
                && !p
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .ends_with("tests.rs")
            {
                files.push(p);
            }
        }
    }
    assert!(files.len() > 100, "read only {} source files", files.len());
    let mut unknown = Vec::new();
    for f in &files {
        for lit in string_literals(&std::fs::read_to_string(f).unwrap()) {
            if !lit.contains(' ') {
                continue;
            }
            for w in word.find_iter(&lit).map(|m| m.as_str()) {
                let mut parts = w.split('_');
                let tool_shaped = parts.next().is_some_and(|v| verbs.contains(&v))
                    && parts.any(|n| nouns.contains(&n));
                if tool_shaped && !all.iter().any(|t| t == w) {
                    unknown.push(format!("{}: {w}", f.strip_prefix(root).unwrap().display()));
                }
            }
        }
    }
    unknown.sort();
    unknown.dedup();
    assert!(
        unknown.is_empty(),
        "answers name tools that do not exist: {unknown:#?}"
    );
}
