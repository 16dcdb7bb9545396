//! The evidence archive as the launcher keeps it: `node-probe evidence` run on a node, decoded and written
//! under `--evidence-dir` (a new file, 0600, in a 0700 directory). Used by `collect_evidence` and, before
//! they act, by the destructive operator tools.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use base64::Engine;
use gpu_diag::command::Request;
use gpu_diag::contract::Report;
use gpu_diag::evidence::{self as ev, BugReport, EvidenceReport, Member};
use schemars::JsonSchema;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{Cx, NodeTarget, ProbeRun, ToolError};

/// The tool name the probe runs under (and the report store's key).
pub const TOOL: &str = "collect_evidence";

/// The archive as kept on the launcher's machine.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Evidence {
    /// The archive's file name (in `dir`).
    pub name: String,
    /// The directory it is in (`--evidence-dir`).
    pub dir: String,
    pub bytes: u64,
    /// SHA-256 of the archive file, hex.
    pub sha256: String,
    /// MCP resource with the archive's `index.json` (this session).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index_uri: Option<String>,
    /// How nvidia-bug-report.sh went (`collected`, `absent`, `timed_out`, `failed`, `too_large`).
    pub bug_report: BugReport,
    pub members: Vec<Member>,
    pub notes: Vec<String>,
}

/// Run `node-probe evidence` on the target and keep its archive under `--evidence-dir`.
pub async fn collect(
    cx: &Cx,
    t: &NodeTarget,
    time_limit: Option<u64>,
) -> Result<(Evidence, ProbeRun), ToolError> {
    let deadline = cx.env.cfg.probe_timeout.as_secs();
    let room = deadline.saturating_sub(30).max(1);
    let limit = match time_limit {
        Some(l) if l == 0 || l > room => {
            return Err(ToolError::Invalid(format!(
                "time_limit_secs must be 1..={room} (the probe deadline, --probe-timeout {deadline} s, \
                 less 30 s for the rest of the collection); got {l}"
            )));
        }
        Some(l) => l,
        None => ev::DEFAULT_TIME_LIMIT_SECS.min(room),
    };
    let request = Request::Evidence {
        time_limit_secs: limit,
    };
    let (report, run) = cx
        .probe_report(TOOL, t, request, |r| match r {
            Report::Evidence(x) => Some(*x),
            _ => None,
        })
        .await?;
    let index_json = serde_json::to_string(&report.index).unwrap_or_default();
    let (name, bytes, sha256) = store(&cx.env.cfg.evidence_dir, &t.node_name, &report)?;
    let index_uri = cx.env.reports.put(&t.node_name, TOOL, index_json);
    Ok((
        Evidence {
            name,
            dir: cx.env.cfg.evidence_dir.display().to_string(),
            bytes,
            sha256,
            index_uri,
            bug_report: report.index.bug_report,
            members: report.index.members,
            notes: report.index.notes,
        },
        run,
    ))
}

/// Decode and write the archive (a new file, mode 0600, in a 0700 directory); its name, size and digest.
fn store(dir: &Path, node: &str, r: &EvidenceReport) -> Result<(String, u64, String), ToolError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(r.archive_base64.as_bytes())
        .map_err(|e| {
            ToolError::Local(format!("the probe's evidence archive is not base64: {e}"))
        })?;
    if bytes.len() > ev::MAX_ARCHIVE_BYTES {
        return Err(ToolError::Local(format!(
            "the probe's evidence archive has {} bytes, over the {} bound",
            bytes.len(),
            ev::MAX_ARCHIVE_BYTES
        )));
    }
    let sha256 = hex(&Sha256::digest(&bytes));
    let name = file_name(node, jiff::Timestamp::now(), &sha256);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| ToolError::Local(format!("cannot create {}: {e}", dir.display())))?;
    let path: PathBuf = dir.join(&name);
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        f.write_all(&bytes)?;
        f.sync_all()
    };
    write().map_err(|e| ToolError::Local(format!("cannot write {}: {e}", path.display())))?;
    Ok((name, bytes.len() as u64, sha256))
}

/// `evidence-<node>-<UTC time>-<digest prefix>.tar.gz`: sorts by node then time, never collides.
/// The node name is already checked (DNS subdomain characters only), so it is safe in a file name.
pub fn file_name(node: &str, at: jiff::Timestamp, sha256: &str) -> String {
    format!(
        "evidence-{node}-{}-{}.tar.gz",
        at.strftime("%Y%m%dT%H%M%SZ"),
        &sha256[..sha256.len().min(12)]
    )
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_sort_by_node_and_time() {
        let t: jiff::Timestamp = "2026-11-22T19:05:07Z".parse().unwrap();
        assert_eq!(
            file_name("gpu-node-5", t, "abcdef0123456789"),
            "evidence-gpu-node-5-20261122T190507Z-abcdef012345.tar.gz"
        );
    }

    #[test]
    fn hex_digest() {
        assert_eq!(
            hex(&Sha256::digest(b"")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
