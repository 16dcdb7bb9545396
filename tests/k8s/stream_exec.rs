//! The copy-delivery exec session against a fake websocket peer (tokio-tungstenite over an in-memory
//! duplex pipe): what it sends on v5 and v4, and that output after stdin still arrives.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio::io::DuplexStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;

use crate::probe::delivery::{Format, READY};
use crate::probe::exec::ExecError;
use crate::probe::exec::ExecOutput;
use crate::probe::stream_exec::run_session_gated;

/// A session whose whole stdin is sent at once (no line to wait for).
async fn run_session<S>(
    ws: WebSocketStream<S>,
    v5: bool,
    stdin: &[u8],
    max_stdout: usize,
    stderr_tail_bytes: usize,
) -> Result<ExecOutput, ExecError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    run_session_gated(ws, v5, &[(b"", stdin)], max_stdout, stderr_tail_bytes, None).await
}

async fn pair(buf: usize) -> (WebSocketStream<DuplexStream>, WebSocketStream<DuplexStream>) {
    let (c, s) = tokio::io::duplex(buf);
    (
        WebSocketStream::from_raw_socket(c, Role::Client, None).await,
        WebSocketStream::from_raw_socket(s, Role::Server, None).await,
    )
}

fn frame(channel: u8, data: &[u8]) -> Message {
    let mut v = vec![channel];
    v.extend_from_slice(data);
    Message::binary(v)
}

fn status_exit(code: i32) -> Vec<u8> {
    let v = if code == 0 {
        json!({"status": "Success"})
    } else {
        json!({"status": "Failure", "reason": "NonZeroExitCode",
               "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]}})
    };
    serde_json::to_vec(&v).unwrap()
}

/// Read stdin frames until `n` bytes arrived; returns them.
async fn read_stdin(server: &mut WebSocketStream<DuplexStream>, n: usize) -> Vec<u8> {
    let mut got = Vec::new();
    while got.len() < n {
        match server.next().await.expect("stream open").expect("frame") {
            Message::Binary(b) => {
                assert_eq!(b[0], 0, "only stdin frames before the end of the payload");
                got.extend_from_slice(&b[1..]);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    got
}

/// The peer's output once stdin is in: 300 kB of stdout in pieces, stderr, then exit 3.
async fn answer(server: &mut WebSocketStream<DuplexStream>) -> Vec<u8> {
    let out: Vec<u8> = (0..300_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    for c in out.chunks(70_000) {
        server.send(frame(1, c)).await.unwrap();
    }
    server.send(frame(2, b"line 1\nline 2\n")).await.unwrap();
    server.send(frame(3, &status_exit(3))).await.unwrap();
    out
}

fn payload(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

#[tokio::test]
async fn v5_sends_payload_then_close_and_output_after_it_arrives() {
    let (client, mut server) = pair(64 * 1024).await;
    let data = payload(1_000_000);
    let peer = async {
        let got = read_stdin(&mut server, data.len()).await;
        // v5: the next frame is the stdin CLOSE signal [255, 0], and the websocket stays open.
        let next = server.next().await.unwrap().unwrap();
        assert_eq!(next, Message::binary(vec![255u8, 0]));
        let out = answer(&mut server).await;
        (got, out)
    };
    let (res, (got, out)) = tokio::time::timeout(
        Duration::from_secs(10),
        futures::future::join(run_session(client, true, &data, 1 << 20, 8192), peer),
    )
    .await
    .expect("no hang");
    assert_eq!(got, data, "the payload arrived whole, in order");
    let res = res.unwrap();
    assert_eq!(res.stdout, out);
    assert!(!res.stdout_truncated);
    assert_eq!(res.stderr_tail, "line 1\nline 2");
    assert_eq!(res.exit_code, 3);
}

#[tokio::test]
async fn v4_never_closes_stdin_and_still_gets_the_output() {
    let (client, mut server) = pair(64 * 1024).await;
    let data = payload(500_000);
    let peer = async {
        let got = read_stdin(&mut server, data.len()).await;
        // v4: no close frame and no websocket close after the payload (either would lose the output).
        let quiet = tokio::time::timeout(Duration::from_millis(300), server.next()).await;
        assert!(
            quiet.is_err(),
            "client sent something after stdin on v4: {quiet:?}"
        );
        let out = answer(&mut server).await;
        // After the status the client ends the session itself.
        let after = tokio::time::timeout(Duration::from_secs(2), server.next()).await;
        (got, out, after)
    };
    let (res, (got, out, after)) = tokio::time::timeout(
        Duration::from_secs(10),
        futures::future::join(run_session(client, false, &data, 1 << 20, 8192), peer),
    )
    .await
    .expect("no hang");
    assert_eq!(got, data);
    let res = res.unwrap();
    assert_eq!(res.stdout, out);
    assert_eq!(res.exit_code, 3);
    match after {
        Ok(Some(Ok(Message::Close(_)))) | Ok(None) => {}
        other => panic!("expected the client to close after the status, got {other:?}"),
    }
}

#[tokio::test]
async fn early_exit_without_reading_stdin_does_not_hang() {
    // A delivery check failed: the command exits at once and nobody reads the rest of a 4 MB payload.
    let (client, mut server) = pair(16 * 1024).await;
    let data = payload(4_000_000);
    let peer = async {
        server
            .send(frame(2, b"k8s-gpu-mcp-delivery: missing-tool tee\n"))
            .await
            .unwrap();
        server.send(frame(3, &status_exit(120))).await.unwrap();
        // Keep the connection (and its full buffer) alive, unread, far longer than the session needs even
        // on a loaded machine: the session ends on the status alone, and the select returns then.
        tokio::time::sleep(Duration::from_secs(60)).await;
    };
    let res = tokio::time::timeout(Duration::from_secs(90), async {
        tokio::select! {
            r = run_session(client, true, &data, 1 << 20, 8192) => r,
            _ = peer => panic!("the peer finished first: the session hung"),
        }
    })
    .await
    .expect("no hang")
    .unwrap();
    assert_eq!(res.exit_code, 120);
    assert_eq!(res.stderr_tail, "k8s-gpu-mcp-delivery: missing-tool tee");
}

#[tokio::test]
async fn stream_closed_without_status_is_an_error_and_stdout_is_capped() {
    let (client, mut server) = pair(64 * 1024).await;
    let peer = async {
        read_stdin(&mut server, 10).await;
        server.send(frame(1, &[b'x'; 5000])).await.unwrap();
        server.close(None).await.unwrap();
    };
    let (res, ()) = tokio::time::timeout(
        Duration::from_secs(5),
        futures::future::join(run_session(client, true, b"0123456789", 1000, 8192), peer),
    )
    .await
    .expect("no hang (closed stream)");
    match res {
        Err(ExecError::Failed(m)) => assert!(m.contains("without an exit status"), "{m}"),
        other => panic!("{other:?}"),
    }
    // The cap: 1000 bytes kept, the rest dropped, and the result says so.
    let (client, mut server) = pair(64 * 1024).await;
    let peer = async {
        read_stdin(&mut server, 3).await;
        server.send(frame(1, &[b'x'; 5000])).await.unwrap();
        server.send(frame(3, &status_exit(0))).await.unwrap();
    };
    let (res, ()) = tokio::time::timeout(
        Duration::from_secs(5),
        futures::future::join(run_session(client, false, b"abc", 1000, 8192), peer),
    )
    .await
    .expect("no hang (capped)");
    let res = res.unwrap();
    assert_eq!(res.stdout.len(), 1000);
    assert!(res.stdout_truncated);
    assert_eq!(res.exit_code, 0);
}

/// The script's two ready lines, each with its own form of the binary.
fn choices<'a>(gzip: &'a [u8], plain: &'a [u8]) -> Vec<(&'static [u8], &'a [u8])> {
    READY
        .iter()
        .map(|&(line, f)| {
            (
                line,
                match f {
                    Format::Gzip => gzip,
                    Format::Plain => plain,
                },
            )
        })
        .collect()
}

/// Gated: no stdin before the ready line (split across stderr frames, `ready` before its format), then all
/// of the form that line asks for, and none of the other.
#[tokio::test]
async fn gated_session_sends_the_form_the_ready_line_asks_for_only_after_it() {
    for (word, want_gzip) in [("gzip", true), ("plain", false)] {
        let (client, mut server) = pair(64 * 1024).await;
        let gz = payload(70_000);
        let plain = payload(200_000);
        let want = if want_gzip { gz.clone() } else { plain.clone() };
        let peer = async {
            // Nothing may arrive while the script has not said it is ready.
            let early = tokio::time::timeout(Duration::from_millis(200), server.next()).await;
            assert!(
                early.is_err(),
                "stdin sent before the ready line: {early:?}"
            );
            server.send(frame(2, b"k8s-gpu-mcp-deliv")).await.unwrap();
            server.send(frame(2, b"ery: ready")).await.unwrap();
            let early = tokio::time::timeout(Duration::from_millis(100), server.next()).await;
            assert!(early.is_err(), "stdin sent before the format: {early:?}");
            server
                .send(frame(2, format!(" {word}\n").as_bytes()))
                .await
                .unwrap();
            let got = read_stdin(&mut server, want.len()).await;
            let next = server.next().await.unwrap().unwrap();
            assert_eq!(next, Message::binary(vec![255u8, 0]), "{word}");
            server.send(frame(3, &status_exit(0))).await.unwrap();
            got
        };
        let (res, got) = tokio::time::timeout(
            Duration::from_secs(10),
            futures::future::join(
                run_session_gated(client, true, &choices(&gz, &plain), 1 << 20, 8192, None),
                peer,
            ),
        )
        .await
        .expect("no hang");
        assert_eq!(got, want, "{word}");
        assert_eq!(res.unwrap().exit_code, 0);
    }
}

/// Gated: a command that fails its checks never says ready; its status ends the session and no stdin was
/// sent (a runtime whose stdin copy would block on an exited command never sees any).
#[tokio::test]
async fn gated_session_ends_at_the_status_when_the_command_never_gets_ready() {
    let (client, mut server) = pair(64 * 1024).await;
    let data = payload(5_000_000);
    let peer = async {
        server
            .send(frame(
                2,
                b"k8s-gpu-mcp-delivery: no-glibc /lib64/ld-linux-x86-64.so.2\n",
            ))
            .await
            .unwrap();
        server.send(frame(3, &status_exit(124))).await.unwrap();
        // Whatever the client still sends: only the websocket close, never stdin.
        while let Some(Ok(m)) = server.next().await {
            if let Message::Binary(b) = &m {
                assert_ne!(b.first(), Some(&0u8), "stdin was sent: {} bytes", b.len());
            }
        }
    };
    let (res, ()) = tokio::time::timeout(
        Duration::from_secs(10),
        futures::future::join(
            run_session_gated(client, true, &choices(&data, &data), 1 << 20, 8192, None),
            peer,
        ),
    )
    .await
    .expect("no hang");
    let res = res.unwrap();
    assert_eq!(res.exit_code, 124);
    assert!(res.stderr_tail.contains("no-glibc"));
}

/// A streamed run through copy delivery's session (issue 92): each stdout line reaches the sink as soon as its
/// newline arrives, a line split across frames whole, and before the status; the output keeps every byte.
#[tokio::test]
async fn copy_deliverys_session_passes_each_stdout_line_on_as_it_arrives() {
    let (client, mut server) = pair(1 << 20).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
    let lines = crate::probe::runner::Lines::new(move |l| {
        let _ = tx.send(l.to_vec());
    });
    let session = tokio::spawn(async move {
        run_session_gated(client, true, &[(b"", b"")], 1 << 20, 8192, Some(&lines)).await
    });
    // v5: the empty stdin's close frame comes first.
    assert!(matches!(server.next().await, Some(Ok(Message::Binary(_)))));
    server
        .send(frame(1, b"{\"live\":\"missed\",\"t_s\":0}\n{\"li"))
        .await
        .unwrap();
    let first = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap();
    assert_eq!(
        first.as_deref(),
        Some(&b"{\"live\":\"missed\",\"t_s\":0}"[..])
    );
    // Half a line is not passed on yet.
    assert!(
        tokio::time::timeout(Duration::from_millis(200), rx.recv())
            .await
            .is_err()
    );
    server
        .send(frame(1, b"ve\":\"missed\",\"t_s\":1}\n"))
        .await
        .unwrap();
    let second = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap();
    assert_eq!(
        second.as_deref(),
        Some(&b"{\"live\":\"missed\",\"t_s\":1}"[..])
    );
    server.send(frame(3, &status_exit(0))).await.unwrap();
    let out = session.await.unwrap().unwrap();
    assert_eq!(
        out.stdout,
        b"{\"live\":\"missed\",\"t_s\":0}\n{\"live\":\"missed\",\"t_s\":1}\n".to_vec()
    );
}
