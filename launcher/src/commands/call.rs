//! `k8s-gpu-mcp call`: one tool call for people and scripts. It runs the real MCP server in-process and
//! talks to it with the MCP client over an in-memory pipe, so it takes exactly the code path an AI host
//! does (argument checks, progress, rendering).

use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use rmcp::model::{
    CallToolRequestParams, JsonObject, NumberOrString, ProgressNotificationParam, ProgressToken,
    RequestMetaObject,
};
use rmcp::service::NotificationContext;
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::Value;

use crate::cli::{CallArgs, OutputFormat};
use crate::mcp::server::Launcher;

/// Prints progress notifications on stderr, every one and in order. rmcp hands each notification to its
/// own task, so they can arrive here out of order and after the result: they are put back in the order of
/// their progress values (which the server sends rising by one step) and the rest is flushed at the end.
#[derive(Clone, Default)]
struct StderrProgress {
    /// rmcp's client puts a progress token on every request, so the server always reports: print only
    /// for a person watching (or `--progress`).
    print: bool,
    /// Redraw one progress bar in place (a person's terminal) instead of a line per update.
    bar: bool,
    printer: Arc<Mutex<ProgressPrinter>>,
    finished: Arc<tokio::sync::Notify>,
}

/// Reorders progress updates: an update is printed once every smaller one has been (the next whole step
/// after the last printed), the others wait; [`ProgressPrinter::flush`] prints what waits, in order.
#[derive(Default)]
pub struct ProgressPrinter {
    last: f64,
    waiting: Vec<(f64, Option<f64>, String)>,
    /// The last step (progress = total) is printed.
    pub done: bool,
    /// The call's total, once an update said it.
    total: Option<f64>,
    /// When the last update came.
    updated: Option<std::time::Instant>,
    /// Flushed: a straggler after that would print out of order, so it is dropped.
    closed: bool,
}

impl ProgressPrinter {
    /// Takes one update; returns the lines now ready to print.
    pub fn take(&mut self, progress: f64, total: Option<f64>, message: String) -> Vec<String> {
        if self.closed {
            return Vec::new();
        }
        self.updated = Some(std::time::Instant::now());
        self.total = self.total.or(total);
        self.waiting.push((progress, total, message));
        self.waiting.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut out = Vec::new();
        while let Some(first) = self.waiting.first() {
            if first.0 > self.last + 1.0 {
                break;
            }
            let (p, t, m) = self.waiting.remove(0);
            out.push(self.line(p, t, &m));
        }
        out
    }

    /// Everything still waiting, in order; later updates are dropped.
    pub fn flush(&mut self) -> Vec<String> {
        self.closed = true;
        let rest = std::mem::take(&mut self.waiting);
        rest.into_iter()
            .map(|(p, t, m)| self.line(p, t, &m))
            .collect()
    }

    fn line(&mut self, p: f64, t: Option<f64>, m: &str) -> String {
        self.last = self.last.max(p);
        if t.is_some_and(|t| p >= t) {
            self.done = true;
        }
        let total = t.map(|t| format!("/{t}")).unwrap_or_default();
        format!("[{p}{total}] {m}")
    }
}

impl ClientHandler for StderrProgress {
    async fn on_progress(&self, p: ProgressNotificationParam, _c: NotificationContext<RoleClient>) {
        if !self.print {
            return;
        }
        // Printed under the lock: two notification tasks that each took their lines in order could
        // otherwise print them in the other order (seen under load: step 3 before step 2).
        if self.bar {
            let line = bar_line(p.progress, p.total, p.message.as_deref().unwrap_or(""));
            let width = 100;
            eprint!("\r\x1b[2K{}", line.chars().take(width).collect::<String>());
            return;
        }
        let done = {
            let mut printer = self.printer.lock().expect("progress printer");
            for l in printer.take(p.progress, p.total, p.message.unwrap_or_default()) {
                eprintln!("{l}");
            }
            printer.done
        };
        if done {
            self.finished.notify_one();
        }
    }
}

impl StderrProgress {
    /// After the result: the server sent every update before it, but their tasks may not have run yet (on a
    /// loaded machine, hundreds of milliseconds later). A call that succeeded with a known total waits for
    /// its last step (at most 5 s); otherwise until no update came for 300 ms (at most 2 s). Then what
    /// waits is printed in order.
    async fn finish(&self, succeeded: bool) {
        use std::time::{Duration, Instant};
        let started = Instant::now();
        let limit = Duration::from_secs(if succeeded { 5 } else { 2 });
        loop {
            let (done, total_known, idle) = {
                let p = self.printer.lock().expect("progress printer");
                let idle = p
                    .updated
                    .unwrap_or(started)
                    .elapsed()
                    .min(started.elapsed());
                (p.done, p.total.is_some(), idle)
            };
            if done
                || started.elapsed() >= limit
                || (!(succeeded && total_known) && idle >= Duration::from_millis(300))
            {
                break;
            }
            let _ = tokio::time::timeout(Duration::from_millis(20), self.finished.notified()).await;
        }
        let mut printer = self.printer.lock().expect("progress printer");
        for l in printer.flush() {
            eprintln!("{l}");
        }
    }
}

/// Build the argument object from `--json` and `--arg key=value` (values parsed as JSON when they are).
pub fn build_arguments(a: &CallArgs) -> Result<JsonObject, String> {
    let mut obj = match &a.json {
        None => JsonObject::new(),
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(o)) => o,
            Ok(_) => {
                return Err(
                    "--json must be a JSON object, e.g. '{\"node_name\":\"local\"}'".into(),
                );
            }
            Err(e) => return Err(format!("--json is not valid JSON: {e}")),
        },
    };
    for kv in &a.args {
        let Some((k, v)) = kv.split_once('=') else {
            return Err(format!(
                "--arg `{kv}` must be key=value, e.g. --arg node_name=gpu-node-5"
            ));
        };
        if k.is_empty() {
            return Err(format!("--arg `{kv}` has an empty key"));
        }
        let value = match serde_json::from_str::<Value>(v) {
            Ok(x @ (Value::Number(_) | Value::Bool(_) | Value::Array(_) | Value::Object(_))) => x,
            _ => Value::String(v.to_string()),
        };
        obj.insert(k.to_string(), value);
    }
    Ok(obj)
}

/// `k8s-gpu-mcp call`: progress lines are for a person watching; scripts reading stderr get none.
pub async fn command(launcher: Launcher, a: CallArgs) -> ExitCode {
    let show_progress = a.progress || std::io::IsTerminal::is_terminal(&std::io::stderr());
    run(launcher, a, show_progress).await
}

/// How a person's verb presents the call (`crate::commands::people`): a bar, colour, a chart kept.
#[derive(Debug, Default)]
pub struct Present {
    pub bar: bool,
    pub colour: bool,
    pub chart: Option<std::path::PathBuf>,
}

pub async fn run(launcher: Launcher, a: CallArgs, verbose_progress: bool) -> ExitCode {
    run_presented(launcher, a, verbose_progress, Present::default()).await
}

pub async fn run_presented(
    launcher: Launcher,
    a: CallArgs,
    verbose_progress: bool,
    present: Present,
) -> ExitCode {
    let arguments = match build_arguments(&a) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("k8s-gpu-mcp call: {e}");
            return ExitCode::from(2);
        }
    };
    let names = launcher.tool_names();
    if a.tool == "list" {
        if a.output == OutputFormat::Json {
            // What `tools/list` answers: names, schemas, annotations (tests derive their tool lists from it).
            match serde_json::to_string_pretty(&launcher.tools()) {
                Ok(s) => println!("{s}"),
                Err(e) => {
                    eprintln!("k8s-gpu-mcp call list: {e}");
                    return ExitCode::from(1);
                }
            }
        } else {
            for n in &names {
                println!("{n}");
            }
        }
        return ExitCode::SUCCESS;
    }
    if !names.iter().any(|n| n == &a.tool) {
        eprintln!(
            "k8s-gpu-mcp call: unknown tool `{}`; tools: {}",
            a.tool,
            names.join(", ")
        );
        return ExitCode::from(2);
    }
    let runner = launcher.runner().clone();
    let (server_io, client_io) = tokio::io::duplex(1 << 20);
    // The server's token, so that a signal cancels its requests at once (a closed transport alone lets
    // rmcp wait up to 5 s for handlers still running).
    let (token_tx, mut server_token) = tokio::sync::oneshot::channel();
    let server = tokio::spawn(async move {
        match launcher.serve(server_io).await {
            Ok(s) => {
                let _ = token_tx.send(s.cancellation_token());
                let _ = s.waiting().await;
            }
            Err(e) => tracing::error!(error = %e, "in-process server failed to start"),
        }
    });
    let progress = StderrProgress {
        print: verbose_progress,
        bar: present.bar,
        ..Default::default()
    };
    let client = match progress.clone().serve(client_io).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("k8s-gpu-mcp call: cannot start the in-process client: {e}");
            return ExitCode::from(1);
        }
    };
    let mut params = CallToolRequestParams::new(a.tool.clone()).with_arguments(arguments);
    if verbose_progress {
        params.meta = Some(RequestMetaObject::with_progress_token(ProgressToken(
            NumberOrString::String("call".into()),
        )));
    }
    // Ctrl-C or SIGTERM mid-call: close the session (its requests are cancelled, each running probe deletes
    // its pod) and wait for those deletes before exiting.
    let res = tokio::select! {
        r = client.call_tool(params) => r,
        name = crate::mcp::server::stop_signal() => {
            eprintln!("k8s-gpu-mcp call: {name}: stopping the probes and deleting their pods");
            // The server first: its cancelled requests delete their pods; then the client's end.
            if let Ok(t) = server_token.try_recv() {
                t.cancel();
                let _ = server.await;
                let _ = client.cancel().await;
            } else {
                let _ = client.cancel().await;
                let _ = server.await;
            }
            runner.shutdown().await;
            crate::cluster::run_mark::lifts_done().await;
            return ExitCode::from(if name == "SIGINT" { 130 } else { 143 });
        }
    };
    if present.bar {
        // The bar's line ends; the answer starts on its own.
        eprint!("\r\x1b[2K");
    } else if verbose_progress {
        let succeeded = res.as_ref().is_ok_and(|r| r.is_error != Some(true));
        progress.finish(succeeded).await;
    }
    let _ = client.cancel().await;
    let _ = server.await;
    runner.shutdown().await;
    crate::cluster::run_mark::lifts_done().await;
    let res = match res {
        Ok(r) => r,
        Err(e) => {
            eprintln!("k8s-gpu-mcp call: {e}");
            return ExitCode::from(2);
        }
    };
    let text: Vec<String> = res
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect();
    if res.is_error == Some(true) {
        eprintln!("{}", text.join("\n"));
        // Scripts that asked for JSON get a JSON document on stdout for errors too, never an empty stdout.
        if a.output == OutputFormat::Json {
            let mut doc = serde_json::json!({
                "tool": a.tool,
                "is_error": true,
                "error": text.join("\n"),
            });
            if let Some(sc) = res.structured_content {
                doc["structured_content"] = sc;
            }
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        }
        return ExitCode::from(1);
    }
    if let Some(path) = &present.chart {
        use base64::Engine;
        let image = res
            .content
            .iter()
            .find_map(|c| c.as_image().map(|i| i.data.clone()));
        match image.map(|d| base64::engine::general_purpose::STANDARD.decode(d)) {
            Some(Ok(bytes)) => match std::fs::write(path, bytes) {
                Ok(()) => eprintln!("chart written to {}", path.display()),
                Err(e) => eprintln!(
                    "k8s-gpu-mcp: cannot write the chart to {}: {e}",
                    path.display()
                ),
            },
            _ => eprintln!("k8s-gpu-mcp: the answer has no chart to write"),
        }
    }
    match a.output {
        OutputFormat::Text => {
            let t = text.join("\n");
            let t = if present.colour { colourize(&t) } else { t };
            print!("{t}");
            if !t.ends_with('\n') {
                println!();
            }
        }
        OutputFormat::Json => {
            let v = res.structured_content.unwrap_or(Value::Null);
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        }
    }
    ExitCode::SUCCESS
}

/// ANSI colour for the words that carry the verdict and severities.
pub fn colourize(text: &str) -> String {
    const RESET: &str = "\x1b[0m";
    let paint = [
        ("UNHEALTHY", "\x1b[1;31m"),
        ("DEGRADED", "\x1b[1;33m"),
        ("HEALTHY", "\x1b[1;32m"),
        ("UNKNOWN", "\x1b[1;90m"),
        ("[CRITICAL]", "\x1b[31m"),
        ("[WARNING]", "\x1b[33m"),
        ("[INFO]", "\x1b[90m"),
    ];
    text.lines()
        .map(|l| {
            let mut l = l.to_string();
            for (word, c) in paint {
                if let Some(i) = l.find(word) {
                    // UNHEALTHY holds HEALTHY: paint a word only where it starts.
                    let starts = i == 0 || !l.as_bytes()[i - 1].is_ascii_alphabetic();
                    if starts && !l.contains(RESET) {
                        l = format!("{}{c}{word}{RESET}{}", &l[..i], &l[i + word.len()..]);
                    }
                }
            }
            l
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The progress bar line: `[#########-----------] 12/30 sampling 12 of 30 s on 1 node(s)`.
pub fn bar_line(progress: f64, total: Option<f64>, message: &str) -> String {
    const WIDTH: usize = 24;
    match total.filter(|t| *t > 0.0) {
        Some(t) => {
            let filled = ((progress / t).clamp(0.0, 1.0) * WIDTH as f64).round() as usize;
            format!(
                "[{}{}] {:.0}/{t:.0} {message}",
                "#".repeat(filled),
                "-".repeat(WIDTH - filled),
                progress.floor()
            )
        }
        None => format!("[{}] {message}", "-".repeat(WIDTH)),
    }
}

#[cfg(test)]
mod tests {
    use super::{ProgressPrinter, bar_line, colourize};

    #[test]
    fn progress_out_of_order_is_printed_in_order_and_none_is_lost() {
        let mut p = ProgressPrinter::default();
        let mut out = Vec::new();
        for step in [3.0, 1.0, 5.0, 2.0] {
            out.extend(p.take(step, Some(5.0), format!("step {step}")));
        }
        // 4 never came: 5 waits for it until the flush.
        assert_eq!(out, ["[1/5] step 1", "[2/5] step 2", "[3/5] step 3"]);
        assert!(!p.done);
        out.extend(p.flush());
        assert_eq!(out.last().unwrap(), "[5/5] step 5");
        assert!(p.done);
        assert!(p.flush().is_empty());
        // A straggler after the flush would print out of order: dropped.
        assert!(p.take(4.0, Some(5.0), "late".into()).is_empty());
    }

    #[test]
    fn colour_marks_the_verdict_word_only() {
        let c = colourize("verdict: UNHEALTHY\n  [WARNING] x");
        assert!(c.contains("\x1b[1;31mUNHEALTHY\x1b[0m"), "{c:?}");
        assert!(
            !c.contains("\x1b[1;32m"),
            "HEALTHY inside UNHEALTHY painted: {c:?}"
        );
        assert!(c.contains("\x1b[33m[WARNING]\x1b[0m"));
    }

    #[test]
    fn the_bar_fills_with_the_window() {
        assert_eq!(
            bar_line(12.0, Some(24.0), "m"),
            format!("[{}{}] 12/24 m", "#".repeat(12), "-".repeat(12))
        );
        assert!(bar_line(0.5, None, "m").starts_with("[---"));
    }
}
