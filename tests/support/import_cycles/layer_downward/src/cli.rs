use crate::config::Config;

pub struct Args;

impl Args {
    pub fn config(&self) -> Config {
        Config
    }
}
