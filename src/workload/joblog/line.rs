//! One raw log line made safe and cheap to read: cut to [`MAX_LINE`], the API server's timestamp split off,
//! and the readers of the fields the signatures take from it.

/// Longer lines are cut here before they are read: a hostile or broken log line cannot cost more.
pub const MAX_LINE: usize = 2048;

/// Cut a line to [`MAX_LINE`] bytes on a character boundary.
pub fn bounded(line: &str) -> &str {
    if line.len() <= MAX_LINE {
        return line;
    }
    let mut end = MAX_LINE;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    &line[..end]
}

/// The RFC 3339 timestamp the API server puts before each line (`timestamps=true`), and the rest.
pub fn split_timestamp(line: &str) -> (Option<&str>, &str) {
    let b = line.as_bytes();
    if b.len() > 20
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[10] == b'T'
        && let Some(sp) = line.find(' ')
        && sp <= 40
    {
        return (Some(&line[..sp]), &line[sp + 1..]);
    }
    (None, line)
}

pub(super) fn digits_after<T: std::str::FromStr>(s: &str, key: &str) -> Option<T> {
    let at = s.find(key)? + key.len();
    let rest = s[at..].trim_start();
    let end = rest
        .char_indices()
        .find(|(i, c)| !(c.is_ascii_digit() || (*i == 0 && *c == '-')))
        .map_or(rest.len(), |(i, _)| i);
    rest[..end].parse().ok()
}

pub(super) fn word_after<'a>(s: &'a str, key: &str) -> Option<&'a str> {
    let at = s.find(key)? + key.len();
    let rest = s[at..].trim_start();
    let w = rest
        .split(|c: char| c.is_whitespace() || c == ',' || c == ')')
        .next()?;
    (!w.is_empty()).then_some(w)
}
