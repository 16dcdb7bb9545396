mod analysis;
pub struct Options;
pub fn dispatch(o: &Options) {
    analysis::run(o)
}
