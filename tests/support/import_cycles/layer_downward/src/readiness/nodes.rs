use super::Report;
use crate::cluster::list;

pub fn check(_: &crate::config::Config) -> Report {
    Report { ok: !list().is_empty() }
}
