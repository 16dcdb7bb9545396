//! Exec helpers: exit code from the status frame, capped stdout, stderr tail.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use serde_json::json;

use crate::probe::exec_result::{exit_code, read_capped, read_tail};

fn st(v: serde_json::Value) -> Status {
    serde_json::from_value(v).unwrap()
}

#[test]
fn exit_codes_from_status() {
    assert_eq!(exit_code(&st(json!({"status": "Success"}))), Some(0));
    let nonzero = st(json!({"status": "Failure", "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": "3"}]}}));
    assert_eq!(exit_code(&nonzero), Some(3));
    // e.g. executable not found: no exit code, an exec error
    let failed = st(
        json!({"status": "Failure", "message": "exec: \"node-probe\": executable file not found"}),
    );
    assert_eq!(exit_code(&failed), None);
    // kwok 0.8's fake kubelet (the e2e testbed): a wrapped os/exec ExitError, as an InternalError.
    let wrapped = st(json!({"status": "Failure", "reason": "InternalError",
        "message": "Internal error occurred: error executing command in container: cmd wait: node-probe health --node-name n1: exit status 2"}));
    assert_eq!(exit_code(&wrapped), Some(2));
    let killed = st(json!({"status": "Failure", "reason": "InternalError",
        "message": "error executing command in container: cmd wait: node-probe health: signal: killed"}));
    assert_eq!(exit_code(&killed), None);
}

#[tokio::test]
async fn stdout_is_capped_but_drained() {
    let data = vec![b'x'; 100_000];
    let (out, truncated) = read_capped(&mut data.as_slice(), 1000).await.unwrap();
    assert_eq!(out.len(), 1000);
    assert!(truncated);
    let (out, truncated) = read_capped(&mut &b"{}"[..], 1000).await.unwrap();
    assert_eq!(out, b"{}");
    assert!(!truncated);
}

#[tokio::test]
async fn stderr_keeps_the_last_whole_lines() {
    let text: String = (0..1000).map(|i| format!("line {i}\n")).collect();
    let tail = read_tail(&mut text.as_bytes(), 30).await.unwrap();
    assert!(tail.ends_with("line 999"), "{tail}");
    assert!(
        tail.starts_with("line 99"),
        "starts at a line boundary: {tail}"
    );
    assert!(tail.len() <= 30);
}
