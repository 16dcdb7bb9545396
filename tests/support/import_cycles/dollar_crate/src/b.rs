pub fn f() -> crate::a::X {
    crate::a::X
}
