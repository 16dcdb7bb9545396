pub fn f() {}
pub fn h() {
    crate::a::g();
}
