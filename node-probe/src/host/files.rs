//! Host files named from the host's `/`, each resolved inside the host root ([`super::root::resolve`]:
//! links followed by hand, none out of the root) and read through the one capped reader. For readers of
//! trees whose files a hostile or damaged host could swap for links (sysfs of a GPU driver, `/proc/<pid>`
//! fd links), so that a link to `/etc/shadow` names the host root's own, and a huge file is an error.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use gpu_diag::facts::{FieldError, FieldErrorKind, Reading};

use super::capped::{MAX_ATTR, io_error, read_capped, read_text_max, shown};

#[derive(Clone, Copy)]
pub struct HostFiles<'a> {
    root: &'a Path,
}

impl<'a> HostFiles<'a> {
    pub fn new(root: &'a Path) -> Self {
        HostFiles { root }
    }

    /// `rel` resolved under the root; links that loop or nest past 40 are an inline error.
    pub fn path(&self, rel: impl AsRef<Path>) -> Result<PathBuf, FieldError> {
        let rel = rel.as_ref();
        super::root::resolve(self.root, rel).ok_or_else(|| {
            FieldError::with_message(
                FieldErrorKind::Unknown,
                format!("{}: symbolic links loop", rel.display()),
            )
        })
    }

    /// A text file of at most `max` bytes (a larger one is an error, never half-parsed).
    pub fn text(&self, rel: impl AsRef<Path>, max: usize) -> Result<String, FieldError> {
        read_text_max(&self.path(rel)?, max)
    }

    /// A one-line attribute, trimmed.
    pub fn line(&self, rel: impl AsRef<Path>) -> Result<String, FieldError> {
        self.text(rel, MAX_ATTR).map(|t| t.trim().to_string())
    }

    /// A one-line attribute parsed as `T` (decimal), the text quoted when it is not one.
    pub fn parse<T: FromStr>(&self, rel: impl AsRef<Path>) -> Reading<T> {
        let rel = rel.as_ref();
        self.line(rel)
            .and_then(|t| {
                t.parse::<T>().map_err(|_| {
                    FieldError::with_message(
                        FieldErrorKind::Unknown,
                        format!("{}: `{}` is not a number", file_name(rel), shown(&t)),
                    )
                })
            })
            .into()
    }

    /// A binary file of at most `max` bytes.
    pub fn bytes(&self, rel: impl AsRef<Path>, max: usize) -> Result<Vec<u8>, FieldError> {
        let rel = rel.as_ref();
        let (bytes, cut) = read_capped(&self.path(rel)?, max).map_err(|e| io_error(&e))?;
        if cut {
            return Err(FieldError::with_message(
                FieldErrorKind::Unknown,
                format!("{} is larger than {max} bytes; not read", file_name(rel)),
            ));
        }
        Ok(bytes)
    }

    /// The UTF-8 names in a directory, sorted (others skipped: no kernel name of interest has them).
    pub fn names(&self, rel: impl AsRef<Path>) -> Result<Vec<String>, FieldError> {
        let rd = std::fs::read_dir(self.path(rel)?).map_err(|e| io_error(&e))?;
        let mut out: Vec<String> = rd
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        out.sort();
        Ok(out)
    }

    /// The text of the link at `rel` itself (not followed): a sysfs `driver` link, a `/proc/<pid>/fd`
    /// entry. Only its parent directory is resolved.
    pub fn link(&self, rel: impl AsRef<Path>) -> Option<PathBuf> {
        let rel = rel.as_ref();
        let parent = self.path(rel.parent()?).ok()?;
        std::fs::read_link(parent.join(rel.file_name()?)).ok()
    }
}

fn file_name(rel: &Path) -> String {
    rel.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| rel.display().to_string())
}
