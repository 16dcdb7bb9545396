pub fn near() -> bool {
    crate::analysis::topology::Relation::Near != crate::analysis::topology::Relation::Far
}
