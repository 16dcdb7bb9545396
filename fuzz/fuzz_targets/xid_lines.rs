//! Fuzz the kernel-log grammar and the whole `xid` analysis (the body is shared with the stable tests).
#![no_main]

#[path = "xid_lines_body.rs"]
mod body;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    body::check(data);
});
