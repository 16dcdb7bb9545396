pub fn f() {}
pub fn g() -> crate::c::C {
    crate::b::real()
}
