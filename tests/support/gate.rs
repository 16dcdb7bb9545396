//! The one way a test skips. Outside CI a skip prints its reason and the test returns; under `CI=true` (what
//! tests/run-all.sh and hosted CI set) a skip fails the test: cargo shows a skipped test as "ok" with its
//! reason hidden by output capture, so a run that skipped something must not pass as complete.
//! Included with `#[path]` where needed (`mod gate;` beside the file that uses it).

#![allow(dead_code)]

/// CI as hosted runners and tests/run-all.sh set it (`true`/`1`); unset, empty, `0` or `false` is a local run.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.as_str(), "" | "0" | "false"))
}

/// Records a skip: panics under CI (naming the reason), else notes it on stderr. Call it, then return.
pub fn skip(reason: &str) {
    if in_ci() {
        panic!("CI=true and this test would be skipped ({reason}): in CI every test runs");
    }
    eprintln!("skipped: {reason}");
}
