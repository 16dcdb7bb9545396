pub fn g() {}
pub fn h() {
    super::super::m::a::f();
}
