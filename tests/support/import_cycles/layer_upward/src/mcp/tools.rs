use crate::commands::check;

pub fn check_cluster() -> bool {
    check::run()
}
