//! What an exec gives back, shared by the plain exec ([`super::exec`]) and the one that sends stdin
//! ([`super::stream_exec`]): the output, the errors, the exit code read from the status, and the bounded
//! readers of stdout and stderr.

use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use tokio::io::{AsyncRead, AsyncReadExt};

/// What one exec gave back.
#[derive(Debug, Clone, Default)]
pub struct ExecOutput {
    /// stdout up to the cap.
    pub stdout: Vec<u8>,
    /// stdout went past the cap (the rest was read and dropped).
    pub stdout_truncated: bool,
    /// The last lines of stderr.
    pub stderr_tail: String,
    pub exit_code: i32,
}

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Failed(String),
    /// The kubelet has no running container of that name yet ("container not found"): retry shortly.
    #[error("{0}")]
    NotRunning(String),
}

/// The kubelet's words for a container that does not run yet (or no more).
fn not_running_message(m: &str) -> bool {
    m.contains("container not found") || m.contains("is not running")
}

/// The error of opening an exec session.
pub fn connect_error(namespace: &str, pod: &str, e: kube::Error) -> ExecError {
    match e {
        // Refused by an admission policy, not by RBAC: the cluster's copy of deploy/policies.yaml does not
        // admit what this launcher sends (another version's policies, or a shape the owner forbade).
        kube::Error::Api(s)
            if s.is_forbidden() && s.message.contains("ValidatingAdmissionPolicy") =>
        {
            ExecError::Forbidden(format!(
                "exec in {namespace}/{pod} refused by the cluster's admission policy (not RBAC): {}; \
                 where the cluster's policies are another version's than this launcher's, `k8s-gpu-mcp setup \
                 --apply` (as a cluster admin) writes this one's and `k8s-gpu-mcp check` says which hold \
                 (deploy/policies.yaml)",
                s.message
            ))
        }
        kube::Error::Api(s) if s.is_forbidden() => ExecError::Forbidden(format!(
            "exec in {namespace}/{pod} needs get+create on pods/exec: {}",
            s.message
        )),
        // The kubelet's answer while the container is still being created (the API server relays it as a
        // 500 with this message).
        kube::Error::Api(s) if not_running_message(&s.message) => {
            ExecError::NotRunning(format!("exec in {namespace}/{pod}: {}", s.message))
        }
        e => ExecError::Failed(format!("exec in {namespace}/{pod}: {e}")),
    }
}

/// What an exec session read, once it ended: the output with the exit code from the status, or the error
/// when there is no status (stream closed) or no exit code in it (the command could not be started).
pub fn output_from_status(
    stdout: Vec<u8>,
    stdout_truncated: bool,
    stderr_tail: String,
    status: Option<Status>,
) -> Result<ExecOutput, ExecError> {
    let Some(status) = status else {
        return Err(ExecError::Failed(format!(
            "the exec stream closed without an exit status after {} bytes of stdout (pod killed, \
             deadline reached, or connection lost); stderr: {stderr_tail}",
            stdout.len()
        )));
    };
    let exit_code = exit_code(&status).ok_or_else(|| {
        let message = status.message.as_deref().unwrap_or_default();
        // API servers that translate websocket exec to the kubelet's protocol (1.30+) upgrade first and then
        // relay the kubelet's "container not found" as the status: the container is not running yet.
        if not_running_message(message) {
            return ExecError::NotRunning(format!(
                "node-probe could not be started yet: {message}"
            ));
        }
        ExecError::Failed(format!(
            "node-probe could not be started: {}{}",
            status.message.as_deref().unwrap_or("no message"),
            if stderr_tail.is_empty() {
                String::new()
            } else {
                format!("; stderr: {stderr_tail}")
            }
        ))
    })?;
    Ok(ExecOutput {
        stdout,
        stdout_truncated,
        stderr_tail,
        exit_code,
    })
}

/// Exit code from the exec status (the remotecommand status channel): `Success` = 0, else the `ExitCode` cause. A failure
/// without one (executable not found, container gone) is not an exit code: None.
///
/// Streaming servers that wrap Go's `*exec.ExitError` instead of returning it (kwok 0.8's fake kubelet:
/// cri-streaming type-asserts `k8s.io/utils/exec.ExitError`, which the wrapped error is not) send an
/// `InternalError` whose message ends in `exit status N`; that is still the command's exit code.
pub fn exit_code(s: &Status) -> Option<i32> {
    if s.status.as_deref() == Some("Success") {
        return Some(0);
    }
    let cause = s
        .details
        .as_ref()
        .and_then(|d| d.causes.as_ref())
        .and_then(|c| c.iter().find(|c| c.reason.as_deref() == Some("ExitCode")))
        .and_then(|c| c.message.as_deref())
        .and_then(|m| m.trim().parse().ok());
    cause.or_else(|| {
        let msg = s.message.as_deref()?.trim_end();
        let (_, n) = msg.rsplit_once("exit status ")?;
        n.parse().ok()
    })
}

/// Read to EOF, keeping the first `cap` bytes; the rest is read and dropped so the stream never stalls.
pub async fn read_capped<R: AsyncRead + Unpin>(
    r: &mut R,
    cap: usize,
) -> std::io::Result<(Vec<u8>, bool)> {
    read_to_cap(r, cap, None).await
}

/// [`read_capped`], passing each complete line to `lines` as it arrives (while within the cap).
pub async fn read_lines<R: AsyncRead + Unpin>(
    r: &mut R,
    cap: usize,
    lines: &Lines,
) -> std::io::Result<(Vec<u8>, bool)> {
    read_to_cap(r, cap, Some(lines)).await
}

async fn read_to_cap<R: AsyncRead + Unpin>(
    r: &mut R,
    cap: usize,
    lines: Option<&Lines>,
) -> std::io::Result<(Vec<u8>, bool)> {
    let mut kept = Vec::new();
    let mut truncated = false;
    let mut buf = vec![0u8; 16 * 1024];
    let mut from = 0;
    loop {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            return Ok((kept, truncated));
        }
        let room = cap.saturating_sub(kept.len());
        kept.extend_from_slice(&buf[..n.min(room)]);
        truncated |= n > room;
        if let Some(l) = lines {
            l.pass_new(&kept, &mut from);
        }
    }
}

/// The last `keep` bytes of a stream, as text (lossy), starting at a line boundary when cut.
pub struct TailBuf {
    tail: Vec<u8>,
    keep: usize,
    cut: bool,
}

impl TailBuf {
    pub fn new(keep: usize) -> Self {
        TailBuf {
            tail: Vec::new(),
            keep,
            cut: false,
        }
    }

    pub fn push(&mut self, data: &[u8]) {
        self.tail.extend_from_slice(data);
        if self.tail.len() > self.keep {
            self.tail.drain(..self.tail.len() - self.keep);
            self.cut = true;
        }
    }

    pub fn finish(self) -> String {
        let text = String::from_utf8_lossy(&self.tail);
        let text = if self.cut {
            text.split_once('\n').map(|x| x.1).unwrap_or(&text)
        } else {
            &text
        };
        text.trim_end().to_string()
    }
}

/// Read to EOF, keeping the last `keep` bytes, as text (lossy), starting at a line boundary when cut.
pub async fn read_tail<R: AsyncRead + Unpin>(r: &mut R, keep: usize) -> std::io::Result<String> {
    let mut tail = TailBuf::new(keep);
    let mut buf = vec![0u8; 8 * 1024];
    loop {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        tail.push(&buf[..n]);
    }
    Ok(tail.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forbidden(message: &str) -> kube::Error {
        let s: kube::core::Status = serde_json::from_value(serde_json::json!({
            "status": "Failure", "message": message, "reason": "Forbidden", "code": 403
        }))
        .unwrap();
        kube::Error::Api(Box::new(s))
    }

    /// An admission policy's refusal is said as one, with the fix for policies of another version; RBAC's
    /// keeps its own words.
    #[test]
    fn a_policy_refusal_is_not_called_rbac() {
        let e = connect_error(
            "gpu-diagnostics",
            "gpu-probe-x",
            forbidden(
                "pods \"gpu-probe-x\" is forbidden: ValidatingAdmissionPolicy 'k8s-gpu-mcp-probe-exec' with \
                 binding 'k8s-gpu-mcp-probe-exec' denied request: node-probe runs only as the launcher calls it",
            ),
        )
        .to_string();
        assert!(e.contains("admission policy (not RBAC)"), "{e}");
        assert!(
            e.contains("setup") && e.contains("deploy/policies.yaml"),
            "{e}"
        );
        assert!(!e.contains("needs get+create"), "{e}");
        let e = connect_error(
            "gpu-diagnostics",
            "gpu-probe-x",
            forbidden("pods \"gpu-probe-x\" is forbidden: User \"u\" cannot create resource \"pods/exec\""),
        )
        .to_string();
        assert!(e.contains("needs get+create on pods/exec"), "{e}");
    }
}

/// Receives each complete line of a streamed run's stdout (without its newline) as it arrives.
#[derive(Clone)]
pub struct Lines(pub Arc<LineFn>);

/// What [`Lines`] calls with each line.
pub type LineFn = dyn Fn(&[u8]) + Send + Sync;

impl Lines {
    pub fn new(f: impl Fn(&[u8]) + Send + Sync + 'static) -> Self {
        Lines(Arc::new(f))
    }

    /// Pass on the complete lines of `out` from `*from` (where the line not yet passed on begins), and move
    /// `*from` past them.
    pub fn pass_new(&self, out: &[u8], from: &mut usize) {
        while let Some(i) = out[*from..].iter().position(|&b| b == b'\n') {
            (self.0)(&out[*from..*from + i]);
            *from += i + 1;
        }
    }

    /// The lines of a whole output, for a transport that could not pass them on as they came: all but
    /// the last (the document).
    pub fn replay(&self, stdout: &[u8]) {
        let mut lines: Vec<&[u8]> = stdout
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        lines.pop();
        for l in lines {
            (self.0)(l);
        }
    }
}

impl std::fmt::Debug for Lines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Lines")
    }
}
