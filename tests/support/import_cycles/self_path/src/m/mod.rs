mod a;
pub struct Options;
pub fn run() {
    self::a::f(&Options);
}
