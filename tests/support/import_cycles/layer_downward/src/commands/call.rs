use crate::mcp::server::Launcher;

pub fn run(cfg: &crate::config::Config) {
    let _ = Launcher(cfg).tools();
}
