#[derive(Default)]
pub struct Config;
