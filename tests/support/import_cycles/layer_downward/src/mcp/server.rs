pub struct Launcher<'a>(pub &'a crate::config::Config);

impl Launcher<'_> {
    pub fn tools(&self) -> bool {
        super::tools::check_cluster(self.0)
    }
}
