//! Hostile tool arguments (SECURITY.md, "The AI host"): every argument of every tool, read from the
//! registry (`call list --output json`, so a new tool is covered), gets shell, path and selector
//! injections, control characters, megabyte strings, out-of-range and mistyped numbers, and unknown
//! extra arguments, through the real MCP path (`serve --local --simulate`, read-only and operator mode).
//! Each call must come back as a clear error (isError or JSON-RPC invalid params) or a normal answer,
//! within the answer budgets; the server must stay up without a panic; no marker file may appear; and
//! the probe's argv, recorded by a wrapper around the real node-probe, must never carry a hostile value.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::mcp::{connect, local_serve};
use common::*;
use rmcp::RoleClient;
use rmcp::model::CallToolRequestParams;
use rmcp::service::RunningService;
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;

/// Budgets every answer stays within (tests/launcher/render.rs asserts them per tool and scenario):
/// text and structured content, twice as much for describe_gpu_node (everything at once).
fn budgets(tool: &str) -> (usize, usize) {
    if tool == "describe_gpu_node" {
        (24 * 1024, 96 * 1024)
    } else {
        (12 * 1024, 48 * 1024)
    }
}

/// Strings an injected prompt might pass: shell, path, selector and flag injection, control characters,
/// odd Unicode, and a megabyte. Those that would run a command create a file under `markers`.
fn hostile_strings(markers: &Path) -> Vec<String> {
    let m = |n: &str| markers.join(n).display().to_string();
    vec![
        format!("; touch {}", m("semicolon")),
        format!("$(touch {})", m("dollar")),
        format!("`touch {}`", m("backtick")),
        format!("x && touch {}", m("and")),
        format!("x | touch {}", m("pipe")),
        format!("x\ntouch {}", m("newline")),
        format!("x' ; touch {} ; '", m("quote")),
        "; rm -rf /".into(),
        "../../etc/passwd".into(),
        "/etc/passwd".into(),
        "local/../../etc/shadow".into(),
        "%2e%2e%2fetc%2fpasswd".into(),
        "a\u{0}b".into(),
        "\r\n\t".into(),
        "a=b,c!=d".into(),
        "x in (y),z notin (w)".into(),
        "app=x?watch=true#".into(),
        "Node/UPPER".into(),
        "--help".into(),
        "--host-root=/".into(),
        "-rf".into(),
        "\u{202e}lacol\u{200b}".into(),
        " ".into(),
        String::new(),
        "x".repeat(1 << 20),
        "a ".repeat(300_000),
    ]
}

fn hostile_numbers() -> Vec<Value> {
    vec![
        json!(-1),
        json!(i64::MIN),
        json!(u64::MAX),
        json!(1e308),
        json!(0.5),
        json!("7; touch x"),
        json!(null),
        json!(true),
        json!([1, 2]),
        json!({"$(touch x)": 1}),
    ]
}

/// A valid-looking value for a required argument, so the hostile one is what the tool judges.
fn base_value(name: &str, schema: &Value) -> Value {
    match (name, schema["type"].as_str()) {
        ("node_name", _) => json!("local"),
        ("namespace", _) => json!("default"),
        ("reason", _) => json!("hostile argument test"),
        (_, Some("integer" | "number")) => json!(1),
        (_, Some("boolean")) => json!(false),
        _ => json!("x"),
    }
}

/// A wrapper around the real node-probe that records its argv (each argument hex-encoded on a line,
/// `END` after each run) and then runs it.
fn recording_probe(dir: &Path, log: &Path) -> std::path::PathBuf {
    fake_probe(
        dir,
        "recording-probe",
        &format!(
            "for a in \"$@\"; do printf '%s' \"$a\" | od -An -v -tx1 | tr -d ' \\n'; echo; done >> '{log}'\n\
             echo END >> '{log}'\n\
             exec '{real}' \"$@\"",
            log = log.display(),
            real = node_probe().display()
        ),
    )
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Every argv the probe ran with.
fn probe_argvs(log: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut runs = Vec::new();
    let mut cur = Vec::new();
    for line in text.lines() {
        if line == "END" {
            runs.push(std::mem::take(&mut cur));
        } else {
            cur.push(String::from_utf8_lossy(&unhex(line)).into_owned());
        }
    }
    runs
}

async fn serve(
    probe: &Path,
    operator: bool,
) -> (
    RunningService<RoleClient, ()>,
    tokio::task::JoinHandle<String>,
) {
    let mut cmd = local_serve(LAUNCHER, &main_scenario(), probe);
    if operator {
        cmd.args(["--mode", "operator"]);
    }
    let launcher = connect((), cmd, Stdio::piped())
        .await
        .expect("initialize handshake");
    let mut stderr = launcher.stderr.expect("stderr is piped");
    let err_task = tokio::spawn(async move {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s).await;
        s
    });
    (launcher.client, err_task)
}

struct Outcome {
    calls: usize,
    tool_errors: usize,
    rpc_errors: usize,
    answers: usize,
}

/// Call `tool` with `args`; check the reply is an error or an answer within the budgets.
async fn hostile_call(
    client: &RunningService<RoleClient, ()>,
    tool: &str,
    args: serde_json::Map<String, Value>,
    what: &str,
    o: &mut Outcome,
) {
    o.calls += 1;
    let (text_budget, structured_budget) = budgets(tool);
    let req = CallToolRequestParams::new(tool.to_string()).with_arguments(args);
    let reply = tokio::time::timeout(Duration::from_secs(120), client.call_tool(req))
        .await
        .unwrap_or_else(|_| panic!("{tool} {what}: no answer in 120 s"));
    match reply {
        Err(e) => {
            // A JSON-RPC error is a clear refusal too, as long as the server lives (checked after).
            let m = e.to_string();
            assert!(
                m.len() <= text_budget,
                "{tool} {what}: error of {} bytes",
                m.len()
            );
            o.rpc_errors += 1;
        }
        Ok(r) => {
            let text: String = r
                .content
                .iter()
                .filter_map(|c| c.as_text().map(|t| t.text.clone()))
                .collect::<Vec<_>>()
                .join("\n");
            assert!(
                text.len() <= text_budget,
                "{tool} {what}: text of {} bytes: {:.300}",
                text.len(),
                text
            );
            if let Some(s) = &r.structured_content {
                let n = serde_json::to_string(s).unwrap().len();
                assert!(
                    n <= structured_budget,
                    "{tool} {what}: structured {n} bytes"
                );
            }
            if r.is_error == Some(true) {
                assert!(
                    !text.trim().is_empty(),
                    "{tool} {what}: an error without a message"
                );
                o.tool_errors += 1;
            } else {
                o.answers += 1;
            }
        }
    }
}

async fn run_mode(operator: bool) {
    let dir = tempfile::tempdir().unwrap();
    let markers = dir.path().join("markers");
    std::fs::create_dir_all(&markers).unwrap();
    let log = dir.path().join("argv.log");
    let probe = recording_probe(dir.path(), &log);
    // Operator mode: the tools it adds (the read-only ones had their run).
    let read_only = tools::read_only_tools(LAUNCHER);
    let tools: Vec<Value> = tools::listed(LAUNCHER, operator)
        .into_iter()
        .filter(|t| !operator || !read_only.iter().any(|n| t["name"] == n.as_str()))
        .collect();
    assert!(!tools.is_empty());
    let (client, stderr) = serve(&probe, operator).await;
    let strings = hostile_strings(&markers);
    let mut o = Outcome {
        calls: 0,
        tool_errors: 0,
        rpc_errors: 0,
        answers: 0,
    };
    for t in &tools {
        let name = t["name"].as_str().unwrap();
        let schema = &t["inputSchema"];
        let props = schema["properties"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let required: Vec<&str> = schema["required"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let mut base = serde_json::Map::new();
        for r in &required {
            base.insert(r.to_string(), base_value(r, &props[*r]));
        }
        for (p, ps) in &props {
            let values: Vec<Value> = match ps["type"].as_str() {
                Some("integer" | "number") => hostile_numbers(),
                Some("boolean") => vec![json!("true; touch x"), json!(1), json!(null)],
                _ => strings
                    .iter()
                    .map(|s| json!(s))
                    .chain([json!(7), json!(["a"]), json!({"a": "$(touch x)"})])
                    .collect(),
            };
            for v in values {
                let mut args = base.clone();
                args.insert(p.clone(), v.clone());
                let shown: String = v.to_string().chars().take(40).collect();
                hostile_call(&client, name, args, &format!("{p}={shown}"), &mut o).await;
            }
        }
        for extra in [
            "zz_unknown",
            "$(touch x)",
            "../../etc/passwd",
            "node_name\u{0}",
        ] {
            let mut args = base.clone();
            args.insert(extra.into(), json!("x"));
            hostile_call(&client, name, args, &format!("extra {extra:?}"), &mut o).await;
        }
    }
    // The server still answers as before.
    let mut ok = serde_json::Map::new();
    ok.insert("node_name".into(), json!("local"));
    let r = client
        .call_tool(CallToolRequestParams::new("get_gpu_health").with_arguments(ok))
        .await
        .expect("the server still answers");
    assert_ne!(r.is_error, Some(true), "{r:?}");
    client.cancel().await.unwrap();
    let stderr = stderr.await.unwrap();
    assert!(
        !stderr.contains("panicked"),
        "the server panicked: {stderr}"
    );

    let made: Vec<_> = std::fs::read_dir(&markers).unwrap().collect();
    assert!(made.is_empty(), "an injected command ran: {made:?}");

    // No hostile value reached node-probe's argv: every argument is a flag, a known word or path.
    let runs = probe_argvs(&log);
    assert!(
        !runs.is_empty(),
        "the probe never ran: the base calls failed"
    );
    let safe = |a: &str| {
        a.len() <= 512
            && !a.contains("..")
            && a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._:/=@,+-".contains(c))
    };
    for argv in &runs {
        for a in argv {
            assert!(
                safe(a),
                "node-probe ran with argument {a:?} (argv {argv:?})"
            );
            assert!(
                !strings
                    .iter()
                    .any(|s| s.len() > 3 && a.contains(s.as_str())),
                "a hostile value reached node-probe: {a:?}"
            );
        }
    }
    eprintln!(
        "{} mode: {} tools, {} calls: {} tool errors, {} JSON-RPC errors, {} answers; {} probe runs",
        if operator { "operator" } else { "read-only" },
        tools.len(),
        o.calls,
        o.tool_errors,
        o.rpc_errors,
        o.answers,
        runs.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_arguments_to_every_read_only_tool() {
    run_mode(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_arguments_to_every_operator_tool() {
    run_mode(true).await;
}
