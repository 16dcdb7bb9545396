mod relation;
pub use relation::Relation;

pub struct Report {
    pub nics: Option<super::nic::NicReport>,
}

pub fn analyze() -> Report {
    Report { nics: Some(super::nic::analyze()) }
}
