//! The bounds on what a DCGM document may make the report hold: a hostile or corrupt `dcgmi` output (or
//! one of a DCGM that prints far more than today's) costs bounded memory and a bounded answer.

/// Iterations kept (`--iterations` wraps runs; the request never asks for more than one).
pub const MAX_RUNS: usize = 4;
/// Tests per run: level 4 of DCGM 4.6 has 14 plugins, 3.x prints one test per level-1 check (13).
pub const MAX_TESTS: usize = 48;
/// Results per test: one per GPU (and per CPU for `cpu_eud`); 64 covers the largest nodes.
pub const MAX_RESULTS: usize = 128;
/// Warnings per result.
pub const MAX_WARNINGS: usize = 8;
/// Info lines per result.
pub const MAX_INFO: usize = 4;
/// Characters of one message.
pub const MAX_TEXT: usize = 400;
/// Bytes of `dcgmi`'s stdout the probe reads (a level-3 run on 8 GPUs prints tens of kilobytes).
pub const MAX_OUTPUT_BYTES: usize = 4 << 20;

/// Bytes of dcgmi's stdout kept as printed in the report (the whole-output resource); a level-3 run on 8
/// GPUs prints tens of kilobytes.
pub const MAX_RAW_BYTES: usize = 256 << 10;

/// At most `max` bytes of `s` (cut at a character boundary), with a note of what was left out.
pub fn clip_bytes(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}\n[... {} more bytes not kept]", &s[..end], s.len() - end)
}

/// At most `max` characters of `s`, with `…` where it was cut.
pub fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_string(),
        Some((i, _)) => format!("{}…", &s[..i]),
    }
}
