//! A small harness in the style of ripgrep's `tests/util.rs`: run the real `node-probe` binary with
//! arguments and files in a temporary directory, and check that stdout is exactly one JSON document.

#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

/// The fake host root, also the scratch directory for fixtures and scripts.
#[path = "../support/host_root.rs"]
pub mod host_root;

/// One invocation of `node-probe`.
pub struct TestCommand {
    cmd: Command,
}

impl TestCommand {
    pub fn new() -> TestCommand {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_node-probe"));
        // The test's own environment must not pick the source.
        cmd.env_remove("NODE_PROBE_SCENARIO_MAP")
            .env_remove("NODE_PROBE_PRETTY");
        TestCommand { cmd }
    }

    pub fn args<I, S>(&mut self, args: I) -> &mut TestCommand
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.cmd.args(args);
        self
    }

    pub fn arg_path(&mut self, path: &Path) -> &mut TestCommand {
        self.cmd.arg(path);
        self
    }

    pub fn env(&mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> &mut TestCommand {
        self.cmd.env(key, value);
        self
    }

    pub fn run(&mut self) -> Output {
        let out = self.cmd.output().expect("run node-probe");
        Output {
            code: out.status.code().expect("exited normally, not by a signal"),
            stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// The one JSON document on stdout; fails the test if stdout holds anything else.
    pub fn doc(&self) -> serde_json::Value {
        let mut stream =
            serde_json::Deserializer::from_str(&self.stdout).into_iter::<serde_json::Value>();
        let first = stream
            .next()
            .unwrap_or_else(|| panic!("no JSON document on stdout (stderr: {})", self.stderr))
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout));
        let rest = &self.stdout[stream.byte_offset()..];
        assert!(
            rest.trim().is_empty(),
            "more than one document on stdout; after the first: {rest}"
        );
        first
    }

    /// The document must be a whole-run error with this exit status; returns its `error` object.
    pub fn failure(&self, code: i32, kind: &str) -> serde_json::Value {
        let doc = self.doc();
        assert_eq!(self.code, code, "exit status; stdout: {}", self.stdout);
        let err = doc
            .get("error")
            .unwrap_or_else(|| panic!("not an error document: {doc}"))
            .clone();
        assert_eq!(err["kind"], kind, "error kind in {doc}");
        assert!(
            err["message"].as_str().is_some_and(|m| !m.is_empty()),
            "message in {doc}"
        );
        assert_eq!(doc["schema_version"], 1);
        err
    }

    /// The document must be a success; returns it.
    pub fn success(&self) -> serde_json::Value {
        let doc = self.doc();
        assert_eq!(
            self.code, 0,
            "exit status; stdout: {} stderr: {}",
            self.stdout, self.stderr
        );
        assert!(doc.get("error").is_none(), "unexpected error: {doc}");
        doc
    }
}

/// The commands whose reports are snapshotted per scenario, from gpu-diag's list: `xid`, `allocation` and
/// `workload` have their own suites (xid, alloc, the launcher's workload diagnosis).
pub fn commands() -> Vec<&'static str> {
    use gpu_diag::command::Command;
    Command::ALL
        .iter()
        .filter(|c| !matches!(c, Command::Xid | Command::Allocation | Command::Workload))
        .map(|c| c.name())
        .collect()
}

/// Names of the built-in scenarios, as the binary lists them.
pub fn scenarios() -> Vec<String> {
    let doc = TestCommand::new().args(["scenarios"]).run().success();
    doc["scenarios"]["scenarios"]
        .as_array()
        .expect("scenario list")
        .iter()
        .map(|s| s["name"].as_str().expect("name").to_string())
        .collect()
}
