pub struct T {
    pub u: Box<dyn Fn() -> crate::a::U>,
}
