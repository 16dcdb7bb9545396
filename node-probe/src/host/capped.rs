//! The one reader of every `/proc` and sysfs file: capped and non-blocking, so a hostile or damaged host
//! root can neither exhaust memory nor hang the probe; and how a failed read is reported inline.

use std::io::ErrorKind as IoKind;
use std::path::Path;

use gpu_diag::facts::{FieldError, FieldErrorKind, Reading};

/// The most of a `/proc` or sysfs file that is read. The kernel's own files are far smaller (a sysfs
/// attribute is at most a page; `proc/stat` of a 4096-CPU host is well under 1 MiB), so only a hostile
/// or damaged host root (a huge or endless file where an attribute should be) reaches it.
pub const MAX_TEXT: usize = 4 << 20;
/// The most of a one-line attribute that is read (the kernel's are at most a page).
pub const MAX_ATTR: usize = 64 * 1024;

/// Read at most `max` bytes of `path`; the flag says the file had more. Opened non-blocking, so a FIFO
/// planted where a file is expected answers at once instead of hanging the probe (for regular, proc and
/// sysfs files the flag changes nothing). Symlink loops fail with the kernel's ELOOP.
pub(crate) fn read_capped(path: &Path, max: usize) -> std::io::Result<(Vec<u8>, bool)> {
    use std::io::Read;
    let fd = rustix::fs::open(
        path,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )?;
    let mut out = Vec::new();
    let mut file = std::fs::File::from(fd).take(max as u64 + 1);
    loop {
        match file.read_to_end(&mut out) {
            Ok(_) => break,
            Err(e) if e.kind() == IoKind::Interrupted => continue,
            // A FIFO or socket with nothing to read: nothing more comes.
            Err(e) if e.kind() == IoKind::WouldBlock => break,
            Err(e) => return Err(e),
        }
    }
    let cut = out.len() > max;
    out.truncate(max);
    Ok((out, cut))
}

/// A whole text file of at most `max` bytes; a larger one is an error, never half-parsed.
pub(crate) fn read_text_max(path: &Path, max: usize) -> Result<String, FieldError> {
    let (bytes, cut) = read_capped(path, max).map_err(|e| io_error(&e))?;
    if cut {
        return Err(FieldError::with_message(
            FieldErrorKind::Unknown,
            format!("{} is larger than {max} bytes; not read", path.display()),
        ));
    }
    String::from_utf8(bytes).map_err(|_| {
        FieldError::with_message(
            FieldErrorKind::Unknown,
            format!("{} is not UTF-8 text", path.display()),
        )
    })
}

pub(crate) fn read_text(path: &Path) -> Result<String, FieldError> {
    read_text_max(path, MAX_TEXT)
}

/// A one-line attribute (hostname, boot id, a sysfs value): at most [`MAX_ATTR`] bytes, trimmed.
pub(crate) fn read_line(path: &Path) -> Reading<String> {
    read_text_max(path, MAX_ATTR)
        .map(|t| t.trim().to_string())
        .into()
}

/// A file's content quoted in an error: its first 64 characters (a hostile file can be megabytes).
pub(crate) fn shown(s: &str) -> std::borrow::Cow<'_, str> {
    match s.char_indices().nth(64) {
        Some((i, _)) => format!("{}…", &s[..i]).into(),
        None => s.into(),
    }
}

pub(crate) fn io_error(e: &std::io::Error) -> FieldError {
    match e.kind() {
        IoKind::NotFound => FieldError::new(FieldErrorKind::NotFound),
        IoKind::PermissionDenied => FieldError::new(FieldErrorKind::NoPermission),
        _ => FieldError::with_message(FieldErrorKind::Unknown, e.to_string()),
    }
}
