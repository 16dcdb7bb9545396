pub fn render() -> String {
    crate::framework::headline()
}

pub fn render_mark() -> String {
    render()
}
