mod affinity;

pub struct NicReport(pub bool);

pub fn analyze() -> NicReport {
    NicReport(affinity::near())
}
