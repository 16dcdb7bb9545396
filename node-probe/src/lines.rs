//! Logs read line by line (kmsg dumps, text logs, their rotated and compressed copies, `journalctl`'s
//! output) without holding them whole: the kernel log and the history of earlier boots both read through
//! here. A line is kept up to [`MAX_LINE`] bytes, so a log with no newline at all (a hostile or damaged
//! file, a decompressed gzip bomb) costs at most that much memory.

use std::io::{BufRead, Read};

/// The most of one line that is kept; the rest of a longer line is read and dropped. A kernel record's
/// text is at most 8 KiB (`/dev/kmsg`), a journal entry as `journalctl --output=json` prints it a few KiB
/// (it prints fields over 4096 bytes as null), so only hostile or damaged input comes near this.
pub const MAX_LINE: usize = 64 * 1024;

/// Read one line of `r` into `buf` (cleared first, newline removed), keeping at most `max` bytes of it.
/// Returns `None` at the end of the input, else whether the line was cut.
pub fn next_line(
    r: &mut impl BufRead,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Option<bool>> {
    buf.clear();
    let mut cut = false;
    let mut any = false;
    loop {
        let chunk = match r.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            return Ok(any.then_some(cut));
        }
        any = true;
        let (part, used, done) = match chunk.iter().position(|b| *b == b'\n') {
            Some(i) => (&chunk[..i], i + 1, true),
            None => (chunk, chunk.len(), false),
        };
        let room = max.saturating_sub(buf.len());
        if part.len() > room {
            cut = true;
        }
        buf.extend_from_slice(&part[..part.len().min(room)]);
        r.consume(used);
        if done {
            return Ok(Some(cut));
        }
    }
}

/// Hand `r`'s lines to `sink` one at a time, line endings removed, invalid UTF-8 replaced, each cut at
/// [`MAX_LINE`] bytes.
pub fn stream_lines(r: impl Read, sink: &mut dyn FnMut(&str)) -> std::io::Result<()> {
    stream_lines_until(r, sink, &mut || false).map(|_| ())
}

/// [`stream_lines`] that asks `stop` after each line and stops early when it says so; returns whether
/// it stopped before the end of the input.
pub fn stream_lines_until(
    r: impl Read,
    sink: &mut dyn FnMut(&str),
    stop: &mut dyn FnMut() -> bool,
) -> std::io::Result<bool> {
    let mut reader = std::io::BufReader::with_capacity(256 * 1024, r);
    let mut buf = Vec::new();
    while next_line(&mut reader, &mut buf, MAX_LINE)?.is_some() {
        let line = String::from_utf8_lossy(&buf);
        sink(line.trim_end_matches('\r'));
        if stop() {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], max: usize) -> Vec<(Vec<u8>, bool)> {
        let mut r = std::io::BufReader::with_capacity(7, input);
        let mut buf = Vec::new();
        let mut out = Vec::new();
        while let Some(cut) = next_line(&mut r, &mut buf, max).unwrap() {
            out.push((buf.clone(), cut));
        }
        out
    }

    #[test]
    fn lines_are_cut_at_the_cap_and_the_rest_dropped() {
        let got = lines(b"short\nabcdefghijklmnop\n\nlast", 10);
        let want: Vec<(Vec<u8>, bool)> = vec![
            (b"short".to_vec(), false),
            (b"abcdefghij".to_vec(), true),
            (b"".to_vec(), false),
            (b"last".to_vec(), false),
        ];
        assert_eq!(got, want);
        assert!(lines(b"", 10).is_empty());
    }

    #[test]
    fn an_endless_line_costs_at_most_the_cap() {
        // 8 MiB without a newline, then one more line: memory holds 4 KiB of it, the next line is whole.
        let mut input = vec![b'x'; 8 << 20];
        input.extend_from_slice(b"\nNVRM: ok\n");
        let mut seen = Vec::new();
        let mut r = std::io::BufReader::new(&input[..]);
        let mut buf = Vec::new();
        while let Some(cut) = next_line(&mut r, &mut buf, 4096).unwrap() {
            assert!(
                buf.capacity() < 1 << 20,
                "line buffer grew to {}",
                buf.capacity()
            );
            seen.push((buf.len(), cut));
        }
        assert_eq!(seen, vec![(4096, true), (8, false)]);
    }
}
