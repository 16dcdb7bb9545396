pub struct Report {
    pub ok: bool,
}
