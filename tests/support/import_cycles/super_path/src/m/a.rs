pub fn f() {
    super::b::g();
}
