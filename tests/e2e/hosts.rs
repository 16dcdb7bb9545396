//! Every MCP host configuration `setup` prints starts as that host starts it: the command and arguments taken
//! from the printed snippet (Claude Desktop and Cursor JSON, VS Code JSON, the `claude mcp add … -- CMD ARGS`
//! line), a host's minimal environment (PATH=/usr/bin:/bin and HOME only), MCP spoken over stdio by a real
//! client: initialize, tools/list, one tools/call against the real API server.

use std::process::{Command, Stdio};

use rmcp::transport::ConfigureCommandExt;
use serde_json::{Value, json};

use crate::mcp::LAUNCHER;
use crate::mcp::harness::{self, Connected};
use crate::testbed::{FakeNode, Testbed, User, skipped, unique};
use crate::{json, stderr};

/// The snippets of `setup --only hosts` as (host, command, args). The shell line keeps its text after `-- `:
/// the user pastes it into a shell, so a shell splits it.
#[derive(Debug)]
enum Snippet {
    Exec {
        host: String,
        command: String,
        args: Vec<String>,
    },
    Shell {
        host: String,
        line: String,
    },
}

fn snippets(printed: &str) -> Vec<Snippet> {
    let mut out = Vec::new();
    for block in printed.split("\n\n") {
        let Some((title, body)) = block.split_once('\n') else {
            continue;
        };
        // After the snippets, setup says which tool groups `--toolsets` picks from: no host's snippet.
        if title.starts_with("Tool groups") {
            continue;
        }
        let host = title.trim_end_matches(':').to_string();
        if let Some(rest) = body.trim().strip_prefix("claude mcp add ") {
            let (_, cmd) = rest
                .split_once(" -- ")
                .unwrap_or_else(|| panic!("no ` -- ` in {body}"));
            out.push(Snippet::Shell {
                host,
                line: cmd.to_string(),
            });
            continue;
        }
        let doc = json(body);
        let servers = doc
            .get("mcpServers")
            .or_else(|| doc.get("servers"))
            .unwrap_or_else(|| panic!("{host}: no servers in {doc}"));
        let server = &servers["k8s-gpu"];
        if doc.get("servers").is_some() {
            assert_eq!(server["type"], "stdio", "{host}: {server}");
        }
        out.push(Snippet::Exec {
            host,
            command: server["command"].as_str().expect("command").to_string(),
            args: server["args"]
                .as_array()
                .expect("args")
                .iter()
                .map(|a| a.as_str().expect("string arg").to_string())
                .collect(),
        });
    }
    out
}

/// A host's environment: nothing of the test's, only PATH=/usr/bin:/bin and HOME.
fn host_env(c: &mut tokio::process::Command, home: &std::path::Path) {
    c.env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", home)
        .stdin(Stdio::piped());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_host_configuration_setup_prints_starts_and_answers() {
    if skipped() {
        return;
    }
    let tb = Testbed::shared();
    tb.bind_reader(User::Reader);
    let ns = unique("e2e-hosts");
    tb.probe_namespace(&ns, User::Reader);
    let group = unique("hosts");
    let node = unique("gpu-hosts");
    tb.add_nodes(&[FakeNode::gpu(&node, "dgx-h100-healthy").label("e2e-group", &group)]);

    let out = Command::new(LAUNCHER)
        .arg("--kubeconfig")
        .arg(tb.kubeconfig(User::Reader))
        .args(["--namespace", &ns, "setup", "--only", "hosts"])
        .env_remove("KUBECONFIG")
        .env("RUST_LOG", "warn")
        .output()
        .expect("run k8s-gpu-mcp setup");
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    let all = snippets(&printed);
    let hosts: Vec<String> = all
        .iter()
        .map(|s| match s {
            Snippet::Exec { host, .. } | Snippet::Shell { host, .. } => host.clone(),
        })
        .collect();
    for want in ["Claude Desktop", "Cursor", "VS Code", "Claude Code"] {
        assert!(
            hosts.iter().any(|h| h.starts_with(want)),
            "{want} not printed: {hosts:?}\n{printed}"
        );
    }

    let home = tempfile::tempdir().unwrap();
    let selector = format!("e2e-group={group}");
    for snippet in &all {
        let (host, cmd) = match snippet {
            Snippet::Exec {
                host,
                command,
                args,
            } => (
                host,
                tokio::process::Command::new(command).configure(|c| {
                    c.args(args);
                    host_env(c, home.path());
                }),
            ),
            // `exec`, so the shell's process is the server's (what `claude` starts after splitting the line).
            Snippet::Shell { host, line } => (
                host,
                tokio::process::Command::new("/bin/sh").configure(|c| {
                    c.arg("-c").arg(format!("exec {line}"));
                    host_env(c, home.path());
                }),
            ),
        };
        let log = home.path().join("server.log");
        let Connected { client, .. } = harness::connect(
            (),
            cmd,
            Stdio::from(std::fs::File::create(&log).unwrap()),
        )
        .await
        .unwrap_or_else(|e| {
            panic!(
                "{host}: the server did not start or answer initialize: {e}\n{snippet:?}\nits stderr:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        });
        let tools = harness::tool_names(&client).await;
        assert!(
            tools.iter().any(|t| t == "list_gpu_nodes") && tools.len() > 5,
            "{host}: {tools:?}"
        );
        let result = client
            .call_tool(harness::request(
                "list_gpu_nodes",
                json!({"label_selector": selector}),
            ))
            .await
            .unwrap_or_else(|e| panic!("{host}: tools/call: {e}"));
        assert_ne!(result.is_error, Some(true), "{host}: {result:?}");
        let v: Value = harness::structured(&result);
        let names: Vec<&str> = v["nodes"]
            .as_array()
            .unwrap_or_else(|| panic!("{host}: {v}"))
            .iter()
            .filter_map(|n| n["name"].as_str())
            .collect();
        assert_eq!(names, [node.as_str()], "{host}: {v}");
        client.cancel().await.ok();
    }
}

/// The Claude Desktop bundle's manifest (packaging/mcpb/manifest.json, which server.json's packages point at):
/// its `mcp_config` command started as the host starts it, `${__dirname}` the unpacked bundle and each
/// `${user_config.*}` what the user entered or its default (an empty context: the kubeconfig's current one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bundle_manifests_command_starts_and_answers() {
    if skipped() {
        return;
    }
    let tb = Testbed::shared();
    tb.bind_reader(User::Reader);
    let ns = unique("e2e-mcpb");
    tb.probe_namespace(&ns, User::Reader);
    let group = unique("mcpb");
    let node = unique("gpu-mcpb");
    tb.add_nodes(&[FakeNode::gpu(&node, "dgx-h100-healthy").label("e2e-group", &group)]);

    let manifest: Value = json(
        &std::fs::read_to_string(crate::testbed::repo_root().join("packaging/mcpb/manifest.json"))
            .unwrap(),
    );
    let bundle = tempfile::tempdir().unwrap();
    std::fs::create_dir(bundle.path().join("server")).unwrap();
    std::fs::copy(
        LAUNCHER,
        bundle
            .path()
            .join(manifest["server"]["entry_point"].as_str().unwrap()),
    )
    .unwrap();
    let home = tempfile::tempdir().unwrap();
    let kubeconfig = tb.kubeconfig(User::Reader);
    let user_config = |key: &str| -> String {
        match key {
            "kubeconfig" => kubeconfig.display().to_string(),
            "namespace" => ns.clone(),
            // What the user leaves as it is: the manifest's default.
            other => manifest["user_config"][other]["default"]
                .as_str()
                .unwrap_or_else(|| panic!("user_config.{other} has no default"))
                .to_string(),
        }
    };
    let fill = |s: &str| -> String {
        let mut s = s.replace("${__dirname}", &bundle.path().display().to_string());
        while let Some(at) = s.find("${user_config.") {
            let end = at + s[at..].find('}').unwrap();
            let key = s[at + "${user_config.".len()..end].to_string();
            s.replace_range(at..=end, &user_config(&key));
        }
        assert!(!s.contains("${"), "unfilled placeholder in {s}");
        s
    };
    let config = &manifest["server"]["mcp_config"];
    let command = fill(config["command"].as_str().unwrap());
    let args: Vec<String> = config["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| fill(a.as_str().unwrap()))
        .collect();
    let log = home.path().join("server.log");
    let cmd = tokio::process::Command::new(&command).configure(|c| {
        c.args(&args);
        host_env(c, home.path());
    });
    let Connected { client, .. } =
        harness::connect((), cmd, Stdio::from(std::fs::File::create(&log).unwrap()))
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "the bundle's server did not start: {e}\n{command} {args:?}\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )
            });
    assert!(
        harness::tool_names(&client)
            .await
            .iter()
            .any(|t| t == "list_gpu_nodes")
    );
    let result = client
        .call_tool(harness::request(
            "list_gpu_nodes",
            json!({"label_selector": format!("e2e-group={group}")}),
        ))
        .await
        .expect("tools/call");
    assert_ne!(result.is_error, Some(true), "{result:?}");
    let v = harness::structured(&result);
    assert_eq!(v["nodes"][0]["name"], node.as_str(), "{v}");
    client.cancel().await.ok();
}
