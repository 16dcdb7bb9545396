pub fn headline() -> String {
    String::new()
}
