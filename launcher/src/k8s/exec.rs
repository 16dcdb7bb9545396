//! Running node-probe in a container: behind [`ProbeExec`] so the pod lifecycle can be unit-tested with
//! canned outputs (tower-test cannot mock the websocket upgrade); [`WebsocketExec`] is the real one.

use std::future::Future;
use std::pin::Pin;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::Client;
use kube::api::{Api, AttachParams};
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

pub type ExecFuture<'a> = Pin<Box<dyn Future<Output = Result<ExecOutput, ExecError>> + Send + 'a>>;

pub trait ProbeExec: Send + Sync {
    /// Run `argv` (no shell) in `container` of `namespace/pod`.
    fn exec<'a>(
        &'a self,
        client: Client,
        namespace: &'a str,
        pod: &'a str,
        container: &'a str,
        argv: Vec<String>,
    ) -> ExecFuture<'a>;

    /// Run `argv` with `stdin` as its standard input (copy delivery). Transports that cannot say so.
    fn exec_stdin<'a>(
        &'a self,
        _client: Client,
        _namespace: &'a str,
        _pod: &'a str,
        _container: &'a str,
        _argv: Vec<String>,
        _stdin: std::sync::Arc<Vec<u8>>,
    ) -> ExecFuture<'a> {
        Box::pin(async {
            Err(ExecError::Failed(
                "this exec transport cannot send stdin (copy delivery)".into(),
            ))
        })
    }
}

/// Exec over the API server's websocket (v5.channel.k8s.io, v4 fallback).
pub struct WebsocketExec {
    pub max_stdout: usize,
    pub stderr_tail_bytes: usize,
}

impl Default for WebsocketExec {
    fn default() -> Self {
        WebsocketExec {
            max_stdout: 16 * 1024 * 1024,
            stderr_tail_bytes: 8 * 1024,
        }
    }
}

impl ProbeExec for WebsocketExec {
    fn exec<'a>(
        &'a self,
        client: Client,
        namespace: &'a str,
        pod: &'a str,
        container: &'a str,
        argv: Vec<String>,
    ) -> ExecFuture<'a> {
        Box::pin(async move {
            let pods: Api<Pod> = Api::namespaced(client, namespace);
            // No stdin: node-probe needs none, and closing stdin over a v4-only proxy would close the whole
            // stream (the v4 remotecommand protocol has no half-close; v5.channel.k8s.io, KEP-4006, adds it). Bigger pipes than the 1 KiB default: fewer wakeups for large documents.
            let ap = AttachParams::default()
                .container(container)
                .stdin(false)
                .stdout(true)
                .stderr(true)
                .max_stdout_buf_size(64 * 1024)
                .max_stderr_buf_size(16 * 1024);
            let mut proc = pods
                .exec(pod, argv, &ap)
                .await
                .map_err(|e| connect_error(namespace, pod, e))?;
            let (Some(mut out), Some(mut err), Some(status)) =
                (proc.stdout(), proc.stderr(), proc.take_status())
            else {
                return Err(ExecError::Failed(
                    "exec session has no stdout/stderr/status".into(),
                ));
            };
            // The three must be drained together: the status frame only arrives after the output ahead of
            // it, and a full pipe blocks the reader task.
            let (stdout, stderr, status) = tokio::join!(
                read_capped(&mut out, self.max_stdout),
                read_tail(&mut err, self.stderr_tail_bytes),
                status
            );
            if let Err(e) = proc.join().await {
                tracing::debug!(error = %e, "exec session ended with an error");
            }
            let (stdout, stdout_truncated) =
                stdout.map_err(|e| ExecError::Failed(format!("reading stdout: {e}")))?;
            let stderr_tail =
                stderr.map_err(|e| ExecError::Failed(format!("reading stderr: {e}")))?;
            output_from_status(stdout, stdout_truncated, stderr_tail, status)
        })
    }

    fn exec_stdin<'a>(
        &'a self,
        client: Client,
        namespace: &'a str,
        pod: &'a str,
        container: &'a str,
        argv: Vec<String>,
        stdin: std::sync::Arc<Vec<u8>>,
    ) -> ExecFuture<'a> {
        Box::pin(async move {
            super::stream_exec::exec_with_stdin(
                &client,
                namespace,
                pod,
                container,
                argv,
                &stdin,
                self.max_stdout,
                self.stderr_tail_bytes,
            )
            .await
        })
    }
}

/// The kubelet's words for a container that does not run yet (or no more).
fn not_running_message(m: &str) -> bool {
    m.contains("container not found") || m.contains("is not running")
}

/// The error of opening an exec session.
pub fn connect_error(namespace: &str, pod: &str, e: kube::Error) -> ExecError {
    match e {
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
    let mut kept = Vec::new();
    let mut truncated = false;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            return Ok((kept, truncated));
        }
        let room = cap.saturating_sub(kept.len());
        kept.extend_from_slice(&buf[..n.min(room)]);
        truncated |= n > room;
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
