use crate::readiness;

pub fn check_cluster(cfg: &crate::config::Config) -> bool {
    readiness::run(cfg).ok
}
