//! The full probe reports of this session, kept so an answer can stay short: every probe's whole report is
//! stored here and offered as an MCP resource (`probe://<n>/<node>/<tool>`), whose URI the answer carries
//! in `run.report_uri`. Bounded in count and bytes; the oldest go first.

use std::collections::VecDeque;
use std::sync::Mutex;

/// Reports kept at most, and their total size.
pub const MAX_REPORTS: usize = 64;
pub const MAX_BYTES: usize = 32 << 20;
pub const SCHEME: &str = "probe://";

pub struct Stored {
    pub uri: String,
    pub node: String,
    pub tool: String,
    pub json: String,
}

#[derive(Default)]
pub struct ReportStore {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    next: u64,
    bytes: usize,
    reports: VecDeque<Stored>,
}

impl ReportStore {
    /// Keep a report; returns its URI. A report bigger than the whole budget is not kept.
    pub fn put(&self, node: &str, tool: &str, json: String) -> Option<String> {
        if json.len() > MAX_BYTES {
            return None;
        }
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.next += 1;
        let uri = format!("{SCHEME}{}/{node}/{tool}", g.next);
        while g.reports.len() >= MAX_REPORTS || g.bytes + json.len() > MAX_BYTES {
            match g.reports.pop_front() {
                Some(old) => g.bytes -= old.json.len(),
                None => break,
            }
        }
        g.bytes += json.len();
        g.reports.push_back(Stored {
            uri: uri.clone(),
            node: node.to_string(),
            tool: tool.to_string(),
            json,
        });
        Some(uri)
    }

    /// A kept report's JSON.
    pub fn get(&self, uri: &str) -> Option<String> {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.reports
            .iter()
            .find(|r| r.uri == uri)
            .map(|r| r.json.clone())
    }

    /// URI, node, tool and size of every kept report, oldest first.
    pub fn list(&self) -> Vec<(String, String, String, usize)> {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.reports
            .iter()
            .map(|r| (r.uri.clone(), r.node.clone(), r.tool.clone(), r.json.len()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_in_count_and_bytes_oldest_first() {
        let s = ReportStore::default();
        let first = s.put("n", "t", "{}".into()).unwrap();
        for _ in 0..MAX_REPORTS {
            s.put("n", "t", "{}".into());
        }
        assert!(s.get(&first).is_none(), "the oldest went first");
        assert_eq!(s.list().len(), MAX_REPORTS);
        let big = "x".repeat(MAX_BYTES / 2 + 1);
        let a = s.put("n", "t", big.clone()).unwrap();
        let b = s.put("n", "t", big).unwrap();
        assert!(s.get(&a).is_none() && s.get(&b).is_some(), "bytes bound");
        assert!(s.put("n", "t", "x".repeat(MAX_BYTES + 1)).is_none());
    }
}
