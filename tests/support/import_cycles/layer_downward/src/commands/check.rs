use crate::cli::Args;

pub fn run(cfg: &crate::config::Config) -> bool {
    let _ = Args;
    crate::readiness::run(cfg).ok
}
