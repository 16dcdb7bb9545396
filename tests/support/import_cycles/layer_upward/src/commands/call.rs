pub fn run(cfg: crate::cli::Config) {
    let _ = crate::mcp::server::Launcher(cfg);
}
