use super::mark::render_mark;

pub fn render() -> String {
    render_mark()
}
