pub fn list() -> Vec<String> {
    Vec::new()
}
