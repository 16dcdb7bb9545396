//! What the kernel-format tests share (`tests/kernel_log/{nvidia,amdgpu,habanalabs}_kernel_formats.rs`): a table of a
//! driver's own print formats read from its TSV, each format printed with its arguments as the kernel's
//! vsnprintf would, behind a dmesg timestamp, the misread lines gathered and failed on together, and where a
//! kernel tree is at hand, each format found verbatim at the line the table cites. What a line must read as
//! is each vendor's test's own. Included with `#[path]` where needed (`mod harness;` beside the test).

#![allow(dead_code)] // each suite uses some of these

use std::path::{Path, PathBuf};

/// The rows of a formats table: tab-separated cells, `#` comments and blank lines skipped; every row has
/// exactly `columns` cells (a row that does not fails the test, naming it).
pub fn rows(text: &str, columns: usize) -> Vec<Vec<&str>> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            assert_eq!(c.len(), columns, "{columns} tab-separated columns: {l:?}");
            c
        })
        .collect()
}

/// A cell that may be empty of meaning: `-` is none.
pub fn opt(s: &str) -> Option<String> {
    (s != "-").then(|| s.to_string())
}

/// A cell of printf arguments, `|` between them; an empty cell is none.
pub fn args(s: &str) -> Vec<String> {
    if s.is_empty() {
        Vec::new()
    } else {
        s.split('|').map(str::to_string).collect()
    }
}

/// printf as the kernel's vsnprintf does it for the conversions the tables use: `%%`, the flags `#` (a `0x`
/// prefix on hex) and `0`, a width, the length modifiers `l h z`, and `s p d i u x X`. Integers are given in
/// decimal in the tables. Anything else (a flag or conversion no table uses) fails the test, naming the format.
pub fn printf(format: &str, args: &[String]) -> String {
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
        let (mut zero, mut alt, mut width) = (false, false, 0usize);
        while let Some(&f) = chars.peek() {
            match f {
                '#' => alt = true,
                '0' if width == 0 => zero = true,
                '0'..='9' => width = width * 10 + f.to_digit(10).unwrap() as usize,
                'l' | 'h' | 'z' => {}
                _ => break,
            }
            chars.next();
        }
        let conv = chars.next().expect("a conversion after %");
        let a = args
            .next()
            .unwrap_or_else(|| panic!("too few args for {format:?}"));
        let int = || a.parse::<i64>().expect("integer arg");
        // Hex of a negative number is its 64-bit two's complement, as the kernel prints a cast to unsigned.
        let hex = || a.parse::<u64>().unwrap_or_else(|_| int() as u64);
        let s = match conv {
            's' | 'p' => a.clone(),
            'd' | 'i' | 'u' => int().to_string(),
            'x' if alt => format!("{:#x}", hex()),
            'x' => format!("{:x}", hex()),
            'X' if alt => format!("0x{:X}", hex()),
            'X' => format!("{:X}", hex()),
            other => panic!("conversion %{other} in {format:?}"),
        };
        let pad = width.saturating_sub(s.len());
        out.push_str(&(if zero { "0" } else { " " }).repeat(pad));
        out.push_str(&s);
    }
    assert!(args.next().is_none(), "too many args for {format:?}");
    out
}

/// A kernel message as dmesg shows it, behind its timestamp.
pub fn dmesg(body: &str) -> String {
    format!("[ 1234.567890] {body}")
}

/// The lines read otherwise than their row says, failed on together at the end so one run names them all.
#[derive(Default)]
pub struct Misread {
    lines: usize,
    failures: Vec<String>,
}

impl Misread {
    /// One more line read.
    pub fn line(&mut self) {
        self.lines += 1;
    }

    pub fn push(&mut self, failure: String) {
        self.failures.push(failure);
    }

    /// `want` and `got` must be equal; else the line, both and where its row came from are kept.
    pub fn compare<T: PartialEq + std::fmt::Debug>(
        &mut self,
        row: &str,
        line: &str,
        want: T,
        got: T,
    ) {
        if got != want {
            self.push(format!("{row}: {line:?}\n  want {want:?}\n  got  {got:?}"));
        }
    }

    /// Fails the test with every misread line, if there is one.
    pub fn assert_none(self) {
        assert!(
            self.failures.is_empty(),
            "{} of {} lines misread:\n{}",
            self.failures.len(),
            self.lines,
            self.failures.join("\n")
        );
    }
}

/// Where a kernel tree is: its env var, else `name` in the cache directory the fetch scripts fill
/// (tests/truth/fetch-upstream.sh, tests/truth/fetch-linux-6.1.sh).
pub fn tree(var: &str, name: &str) -> Option<PathBuf> {
    if let Some(v) = std::env::var_os(var).filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(v));
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(cache.join("k8s-gpu-mcp/upstream").join(name))
}

/// The line a `file:line` citation names in the tree at `root`.
pub fn line_at(root: &Path, cite: &str) -> String {
    let (file, line) = cite.rsplit_once(':').expect("file:line");
    let line: usize = line.parse().unwrap_or_else(|_| panic!("line of {cite}"));
    let path = root.join(file);
    let src = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (cited by {cite})", path.display()));
    src.lines().nth(line - 1).unwrap_or("").to_string()
}

/// The format still opens a string literal at its cited line of Linux `kernel` (the tree at `root`): a
/// reworded or moved message fails here, naming the table to update.
pub fn assert_verbatim(kernel: &str, root: &Path, cite: &str, format: &str, table: &str) {
    let at = line_at(root, cite);
    assert!(
        at.contains(&format!("\"{format}")),
        "Linux {kernel} {cite}: the format {format:?} is no longer at that line (it reads {at:?}); the message \
         was reworded or moved: update {table} and, if the words changed, the grammar"
    );
}

/// One judgment per event, whichever tool names it: the kernel log's report (`analyze_xid_errors`),
/// health (`get_gpu_health`) and describe's health and kernel-log section (`describe_gpu_node`) give each
/// finding about the line's event (its code on its GPU) the same severity and the same action. `None`
/// where they agree, else what differs.
pub fn one_judgment(facts: &gpu_diag::facts::NodeFacts) -> Option<String> {
    use gpu_diag::finding::Judged;
    use std::collections::BTreeMap;
    let opts = gpu_diag::options::AnalysisOptions::default();
    let xid = gpu_diag::kernel_log::report::analyze(facts, &opts);
    let health = gpu_diag::analysis::health::analyze(facts, &opts);
    let describe = gpu_diag::analysis::describe::analyze(facts, &opts);
    let tools: [(&str, Vec<&gpu_diag::finding::Finding>); 4] = [
        ("analyze_xid_errors", xid.findings()),
        ("get_gpu_health", health.findings()),
        ("describe_gpu_node (health)", describe.health.findings()),
        ("describe_gpu_node (kernel log)", describe.xid.findings()),
    ];
    let mut said: BTreeMap<(String, Option<u32>), (&str, String)> = BTreeMap::new();
    let mut off = Vec::new();
    for (tool, findings) in &tools {
        for f in findings {
            let judgment = format!("{:?} / {:?}", f.severity, f.action.kind);
            match said.get(&(f.code.clone(), f.gpu)) {
                Some((first, j)) if *j != judgment => off.push(format!(
                    "{} on GPU {:?}: {first} says {j}, {tool} says {judgment}",
                    f.code, f.gpu
                )),
                Some(_) => {}
                None => {
                    said.insert((f.code.clone(), f.gpu), (tool, judgment));
                }
            }
        }
    }
    // Each event the kernel log reports is named by health too: no tool drops what another judged.
    for f in &tools[0].1 {
        if f.severity >= gpu_diag::finding::Severity::Warning
            && !tools[1]
                .1
                .iter()
                .any(|h| h.code == f.code && h.gpu == f.gpu)
        {
            off.push(format!(
                "{} on GPU {:?}: not in get_gpu_health",
                f.code, f.gpu
            ));
        }
    }
    (!off.is_empty()).then(|| off.join("; "))
}
