#[derive(PartialEq)]
pub enum Relation {
    Near,
    Far,
}
