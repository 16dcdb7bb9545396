pub fn serve() {
    crate::extra::help();
}
