//! The one way a test runs node-probe, in the style of ripgrep's `tests/util.rs`: the real binary with
//! the test's own `NODE_PROBE_*` environment removed, explicit arguments, environment, host root and
//! stdin, and stdout checked to be exactly one JSON document. Included with `#[path]` (`mod node_probe;`).

// Each suite that includes this file uses a part of it.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

/// One invocation of `node-probe`, built up and then run.
pub struct NodeProbe {
    cmd: Command,
    stdin: Option<Vec<u8>>,
}

impl Default for NodeProbe {
    fn default() -> Self {
        Self::new()
    }
}

impl NodeProbe {
    /// The binary with no arguments. Every `NODE_PROBE_*` variable of the test's environment is removed
    /// (the scenario map, the host and driver roots, the output form): only what a test names with
    /// [`NodeProbe::env`] reaches the probe. The rest of the environment stays (`PATH` finds the host's
    /// `journalctl`).
    pub fn new() -> NodeProbe {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_node-probe"));
        for (key, _) in std::env::vars_os() {
            if key.to_str().is_some_and(|k| k.starts_with("NODE_PROBE_")) {
                cmd.env_remove(&key);
            }
        }
        NodeProbe { cmd, stdin: None }
    }

    pub fn args<I, S>(&mut self, args: I) -> &mut NodeProbe
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd.args(args);
        self
    }

    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut NodeProbe {
        self.cmd.arg(arg);
        self
    }

    /// `--host-root ROOT`: the fake host the probe reads.
    pub fn host_root(&mut self, root: &Path) -> &mut NodeProbe {
        self.cmd.arg("--host-root").arg(root);
        self
    }

    pub fn env(&mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> &mut NodeProbe {
        self.cmd.env(key, value);
        self
    }

    pub fn envs<K, V>(&mut self, vars: impl IntoIterator<Item = (K, V)>) -> &mut NodeProbe
    where
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        self.cmd.envs(vars);
        self
    }

    /// What the probe reads on stdin (nothing, a closed stdin, unless given).
    pub fn stdin(&mut self, bytes: impl Into<Vec<u8>>) -> &mut NodeProbe {
        self.stdin = Some(bytes.into());
        self
    }

    /// The prepared command, for a suite that runs the process its own way (the hostile-input suite
    /// reaps it with `wait4` for its peak memory).
    pub fn command(self) -> Command {
        let mut cmd = self.cmd;
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Runs it to its end; it must exit (not be killed by a signal) and print UTF-8 on stdout.
    pub fn run(&mut self) -> Output {
        self.cmd
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = self.cmd.spawn().expect("run node-probe");
        if let Some(bytes) = self.stdin.clone() {
            let mut pipe = child.stdin.take().expect("stdin");
            // A probe that stops reading early closes the pipe: not the test's failure.
            std::thread::spawn(move || {
                let _ = pipe.write_all(&bytes);
            });
        }
        let out = child.wait_with_output().expect("wait for node-probe");
        Output {
            code: out.status.code().expect("exited normally, not by a signal"),
            stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs it and checks what every run must be: one JSON document on one line of stdout, and no panic
    /// on stderr.
    pub fn document(&mut self) -> Document {
        let out = self.run();
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
        assert_eq!(
            out.stdout.lines().count(),
            1,
            "one document on one line: {}\n{}",
            out.stdout,
            out.stderr
        );
        Document {
            code: out.code,
            doc: out.doc(),
            stderr: out.stderr,
        }
    }
}

/// What a run printed and its exit status.
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// A run's one document, its exit status and its stderr.
pub struct Document {
    pub code: i32,
    pub doc: Value,
    pub stderr: String,
}

impl Output {
    /// The one JSON document on stdout; fails the test if stdout holds anything else.
    pub fn doc(&self) -> Value {
        let mut stream = serde_json::Deserializer::from_str(&self.stdout).into_iter::<Value>();
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
    pub fn failure(&self, code: i32, kind: &str) -> Value {
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
    pub fn success(&self) -> Value {
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

/// Names of the built-in scenarios, as the binary lists them.
pub fn scenarios() -> Vec<String> {
    let doc = NodeProbe::new().args(["scenarios"]).run().success();
    doc["scenarios"]["scenarios"]
        .as_array()
        .expect("scenario list")
        .iter()
        // The time scripts `watch` plays: their node is a built-in scenario's, walked already.
        .filter(|s| {
            !s["description"]
                .as_str()
                .unwrap_or("")
                .starts_with("Time script")
        })
        .map(|s| s["name"].as_str().expect("name").to_string())
        .collect()
}
