//! Running node-probe in a container: behind [`ProbeExec`] so the pod lifecycle can be unit-tested with
//! canned outputs (tower-test cannot mock the websocket upgrade); [`WebsocketExec`] is the real one.

use std::future::Future;
use std::pin::Pin;

use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, AttachParams};

pub use super::exec_result::{ExecError, ExecOutput};
use super::exec_result::{
    Lines, connect_error, output_from_status, read_capped, read_lines, read_tail,
};

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

    /// [`ProbeExec::exec`] for a streamed run: each line of stdout to `lines` as it arrives. A transport that
    /// cannot pass lines on as they come gives them at the end, from its output.
    fn exec_lines<'a>(
        &'a self,
        client: Client,
        namespace: &'a str,
        pod: &'a str,
        container: &'a str,
        argv: Vec<String>,
        lines: Lines,
    ) -> ExecFuture<'a> {
        Box::pin(async move {
            let out = self.exec(client, namespace, pod, container, argv).await?;
            lines.replay(&out.stdout);
            Ok(out)
        })
    }

    /// [`ProbeExec::exec_lines`] for a streamed run, else [`ProbeExec::exec`].
    fn exec_run<'a>(
        &'a self,
        client: Client,
        namespace: &'a str,
        pod: &'a str,
        container: &'a str,
        argv: Vec<String>,
        lines: Option<&Lines>,
    ) -> ExecFuture<'a> {
        match lines {
            Some(l) => self.exec_lines(client, namespace, pod, container, argv, l.clone()),
            None => self.exec(client, namespace, pod, container, argv),
        }
    }

    /// Run the copy-delivery script `argv` and send it the archive of `payload` it asks for, a streamed run's
    /// stdout lines to `lines` as they arrive. Transports that cannot say so.
    #[allow(clippy::too_many_arguments)]
    fn exec_stdin<'a>(
        &'a self,
        _client: Client,
        _namespace: &'a str,
        _pod: &'a str,
        _container: &'a str,
        _argv: Vec<String>,
        _payload: std::sync::Arc<super::delivery::Payload>,
        _lines: Option<Lines>,
    ) -> ExecFuture<'a> {
        Box::pin(async {
            Err(ExecError::Failed(
                "this exec transport cannot send stdin (copy delivery)".into(),
            ))
        })
    }
}

/// Exec over the API server's websocket: v4.channel.k8s.io, as no stdin is sent (cluster/exec_protocol.rs).
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

impl WebsocketExec {
    async fn run(
        &self,
        client: Client,
        namespace: &str,
        pod: &str,
        container: &str,
        argv: Vec<String>,
        lines: Option<Lines>,
    ) -> Result<ExecOutput, ExecError> {
        let pods: Api<Pod> = Api::namespaced(client, namespace);
        // No stdin: node-probe needs none, and closing stdin over a v4-only proxy would close the whole
        // stream (the v4 remotecommand protocol has no half-close; v5.channel.k8s.io, KEP-4006, adds it).
        // Bigger pipes than the 1 KiB default: fewer wakeups for large documents.
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
        let stdout = async {
            match &lines {
                Some(l) => read_lines(&mut out, self.max_stdout, l).await,
                None => read_capped(&mut out, self.max_stdout).await,
            }
        };
        // The three must be drained together: the status frame only arrives after the output ahead of
        // it, and a full pipe blocks the reader task.
        let (stdout, stderr, status) =
            tokio::join!(stdout, read_tail(&mut err, self.stderr_tail_bytes), status);
        if let Err(e) = proc.join().await {
            tracing::debug!(error = %e, "exec session ended with an error");
        }
        let (stdout, stdout_truncated) =
            stdout.map_err(|e| ExecError::Failed(format!("reading stdout: {e}")))?;
        let stderr_tail = stderr.map_err(|e| ExecError::Failed(format!("reading stderr: {e}")))?;
        output_from_status(stdout, stdout_truncated, stderr_tail, status)
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
        Box::pin(self.run(client, namespace, pod, container, argv, None))
    }

    fn exec_lines<'a>(
        &'a self,
        client: Client,
        namespace: &'a str,
        pod: &'a str,
        container: &'a str,
        argv: Vec<String>,
        lines: Lines,
    ) -> ExecFuture<'a> {
        Box::pin(self.run(client, namespace, pod, container, argv, Some(lines)))
    }

    #[allow(clippy::too_many_arguments)]
    fn exec_stdin<'a>(
        &'a self,
        client: Client,
        namespace: &'a str,
        pod: &'a str,
        container: &'a str,
        argv: Vec<String>,
        payload: std::sync::Arc<super::delivery::Payload>,
        lines: Option<Lines>,
    ) -> ExecFuture<'a> {
        Box::pin(async move {
            super::stream_exec::exec_with_stdin(
                &client,
                namespace,
                pod,
                container,
                argv,
                &payload,
                self.max_stdout,
                self.stderr_tail_bytes,
                lines.as_ref(),
            )
            .await
        })
    }
}
