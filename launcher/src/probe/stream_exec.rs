//! An exec session that sends a payload on stdin, for copy delivery (delivery.rs).
//!
//! kube's `AttachedProcess` does not say which subprotocol the server picked, and on v4 closing its stdin
//! closes the whole websocket (v4 has no half-close; KEP-4006's v5.channel.k8s.io adds it), losing the output. This session speaks the channel protocol
//! itself over [`kube::Client::connect`], so it knows: on `v5.channel.k8s.io` it sends the payload and then
//! the stdin CLOSE frame `[255, 0]`; on v4 it never closes stdin and leaves it open until the status arrives.
//! The delivery script reads exactly the payload's length, so neither depends on stdin's EOF.
//! Channels: 0 stdin, 1 stdout, 2 stderr, 3 status (a `metav1.Status`), 255 close (v5).

use futures::{SinkExt, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::Client;
use kube::api::AttachParams;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

use super::delivery::{Payload, READY};
use super::exec_result::{
    ExecError, ExecOutput, Lines, TailBuf, connect_error, output_from_status,
};

pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const STATUS: u8 = 3;
pub const CLOSE: u8 = 255;

/// Bytes of stdin per websocket frame.
const CHUNK: usize = 256 * 1024;

/// Run the copy-delivery script (delivery.rs) in `namespace/pod/container` and send it the archive its ready
/// line asks for. stdin is sent only after that line: a command that exits without reading its input leaves
/// containerd's stdin copy blocked, and the exit status then never arrives (seen with containerd 1.6).
#[allow(clippy::too_many_arguments)]
pub async fn exec_with_stdin(
    client: &Client,
    namespace: &str,
    pod: &str,
    container: &str,
    argv: Vec<String>,
    payload: &Payload,
    max_stdout: usize,
    stderr_tail_bytes: usize,
    lines: Option<&Lines>,
) -> Result<ExecOutput, ExecError> {
    let ap = AttachParams::default()
        .container(container)
        .stdin(true)
        .stdout(true)
        .stderr(true);
    let url = <Pod as kube::Resource>::url_path(&(), Some(namespace));
    let mut req = kube::core::Request::new(url)
        .exec(pod, argv, &ap)
        .map_err(|e| ExecError::Failed(format!("exec request: {e}")))?;
    // What kube's own Api::exec sets (metrics and tracing label the request with it).
    req.extensions_mut().insert("exec");
    let conn = client
        .connect(req)
        .await
        .map_err(|e| connect_error(namespace, pod, e))?;
    let v5 = conn.supports_stream_close();
    let choices: Vec<_> = READY
        .iter()
        .map(|&(line, format)| (line, payload.stdin_for(format)))
        .collect();
    tracing::debug!(
        pod,
        v5,
        plain = payload.plain.len(),
        gzip = payload.gzip().map_or(0, |g| g.len()),
        "exec session with stdin"
    );
    run_session_gated(
        conn.into_stream(),
        v5,
        &choices,
        max_stdout,
        stderr_tail_bytes,
        lines,
    )
    .await
}

/// The session over an open websocket: send stdin (then CLOSE on v5), while reading stdout (capped),
/// stderr (tail) and the status. Ends at the status, or with an error when the stream ends without one.
/// No timeout here: the caller bounds it (the call's deadline).
///
/// The stdin is chosen by the command: each choice is a line to wait for on stderr and
/// what to send once it appears (the first whose line appears; an empty line: at once, without waiting).
pub async fn run_session_gated<S>(
    ws: WebSocketStream<S>,
    v5: bool,
    choices: &[(&[u8], &[u8])],
    max_stdout: usize,
    stderr_tail_bytes: usize,
    lines: Option<&Lines>,
) -> Result<ExecOutput, ExecError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut sink, mut stream) = ws.split();
    let ready = tokio::sync::Notify::new();
    // Which choice was made (usize::MAX: none yet); an atomic, as the future must stay Send.
    let chosen = std::sync::atomic::AtomicUsize::new(usize::MAX);
    // The end of stderr seen so far, long enough to find a line split across frames.
    let mut window: Vec<u8> = Vec::new();
    let longest = choices.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
    let mut waiting = true;
    if let Some(i) = choices.iter().position(|(l, _)| l.is_empty()) {
        chosen.store(i, std::sync::atomic::Ordering::Relaxed);
        ready.notify_one();
        waiting = false;
    }
    let mut stdout: Vec<u8> = Vec::new();
    // Where the stdout line not yet passed to `lines` begins.
    let mut line_from = 0;
    let mut truncated = false;
    let mut stderr = TailBuf::new(stderr_tail_bytes);
    let mut send_error: Option<String> = None;
    let status: Option<Status> = {
        let send = async {
            ready.notified().await;
            let stdin = choices
                .get(chosen.load(std::sync::atomic::Ordering::Relaxed))
                .map_or(&[][..], |c| c.1);
            for chunk in stdin.chunks(CHUNK) {
                let mut frame = Vec::with_capacity(chunk.len() + 1);
                frame.push(STDIN);
                frame.extend_from_slice(chunk);
                sink.send(Message::binary(frame)).await?;
            }
            if v5 {
                // v5: end of stdin alone; stdout/stderr keep flowing.
                sink.send(Message::binary(vec![CLOSE, STDIN])).await?;
            }
            // v4: nothing more. Closing stdin there would close the websocket and lose the output.
            Ok::<_, tokio_tungstenite::tungstenite::Error>(())
        };
        let recv = async {
            while let Some(msg) = stream.next().await {
                let msg = msg.map_err(|e| format!("reading the exec stream: {e}"))?;
                let bin = match msg {
                    Message::Binary(bin) => bin,
                    // Nothing can follow a close frame; don't wait for the server to drop the connection.
                    Message::Close(_) => break,
                    // Pings are answered by tungstenite.
                    _ => continue,
                };
                let Some((&channel, data)) = bin.split_first() else {
                    continue;
                };
                match channel {
                    STDOUT => {
                        let room = max_stdout.saturating_sub(stdout.len());
                        stdout.extend_from_slice(&data[..data.len().min(room)]);
                        truncated |= data.len() > room;
                        if let Some(l) = lines {
                            l.pass_new(&stdout, &mut line_from);
                        }
                    }
                    STDERR => {
                        stderr.push(data);
                        if waiting {
                            window.extend_from_slice(data);
                            if let Some(i) = choices
                                .iter()
                                .position(|(l, _)| window.windows(l.len()).any(|w| w == *l))
                            {
                                chosen.store(i, std::sync::atomic::Ordering::Relaxed);
                                ready.notify_one();
                                waiting = false;
                                window = Vec::new();
                            } else {
                                let keep = window.len().min(longest.saturating_sub(1));
                                window.drain(..window.len() - keep);
                            }
                        }
                    }
                    STATUS if !data.is_empty() => {
                        let s: Status = serde_json::from_slice(data)
                            .map_err(|e| format!("exec status is not a Status: {e}"))?;
                        tracing::debug!(status = %String::from_utf8_lossy(data), "exec status");
                        return Ok(Some(s));
                    }
                    // An empty frame per channel opens the session; nothing else is expected.
                    _ => {}
                }
            }
            Ok::<_, String>(None)
        };
        tokio::pin!(send, recv);
        let mut sending = true;
        loop {
            tokio::select! {
                r = &mut send, if sending => {
                    sending = false;
                    if let Err(e) = r {
                        // The command may have exited without reading all of stdin (a delivery check
                        // failed): the status still says what happened.
                        tracing::debug!(error = %e, "sending stdin stopped");
                        send_error = Some(e.to_string());
                    }
                }
                r = &mut recv => break r.map_err(ExecError::Failed)?,
            }
        }
    };
    // Best effort, bounded: tell the server we are done (it ends the session after the status anyway). A
    // server that stopped reading stdin may never take the close frame.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), sink.close()).await;
    let stderr_tail = stderr.finish();
    if status.is_none()
        && let Some(e) = send_error
    {
        return Err(ExecError::Failed(format!(
            "the exec stream closed without an exit status while sending node-probe ({e}); stderr: \
             {stderr_tail}"
        )));
    }
    output_from_status(stdout, truncated, stderr_tail, status)
}
