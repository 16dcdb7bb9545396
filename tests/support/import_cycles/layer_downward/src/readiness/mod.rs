mod nodes;
pub mod report;

pub use report::Report;

pub fn run(cfg: &crate::config::Config) -> Report {
    nodes::check(cfg)
}
