//! Logs read line by line (kmsg dumps, text logs, their rotated and compressed copies) without holding
//! them whole: the kernel log and the history of earlier boots both read through here.

use std::io::Read;

/// Hand `r`'s lines to `sink` one at a time, line endings removed, invalid UTF-8 replaced.
pub fn stream_lines(r: impl Read, sink: &mut dyn FnMut(&str)) -> std::io::Result<()> {
    let mut reader = std::io::BufReader::with_capacity(256 * 1024, r);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = std::io::BufRead::read_until(&mut reader, b'\n', &mut buf)?;
        if n == 0 {
            return Ok(());
        }
        let line = String::from_utf8_lossy(&buf);
        sink(line.trim_end_matches(['\n', '\r']));
    }
}
