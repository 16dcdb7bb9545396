use crate::cli::Config;

pub struct Launcher(pub Config);
