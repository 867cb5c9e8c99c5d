//! The page's option lists agree with the core: `www/options.js` lists the calibration methods
//! of `Calibration::ALL` (names and labels, in order), and the URL codec (`www/hash.js`) and the
//! detector's method picker (`www/components/detector/template.js`) offer exactly those plus
//! `auto`. A method added to the core fails here until the page offers it.

use qplay_core::quant::Calibration;
use std::collections::BTreeSet;
use std::path::Path;

fn www(rel: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../www").join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The quoted strings after each `key: '` in `text`.
fn values(text: &str, key: &str) -> Vec<String> {
    text.split(&format!("{key}: '")).skip(1).filter_map(|s| s.split('\'').next()).map(String::from).collect()
}

fn label(c: &Calibration) -> &'static str {
    match c {
        Calibration::MinMax => "MinMax",
        Calibration::MovingAverageMinMax { .. } => "Moving-average MinMax",
        Calibration::Percentile { .. } => "Percentile 99.99",
        Calibration::Entropy => "Entropy (KL)",
        Calibration::Mse => "MSE",
    }
}

#[test]
fn calibration_methods_in_the_page_match_the_core() {
    let core: Vec<&str> = Calibration::ALL.iter().map(Calibration::name).collect();
    let options = www("options.js");
    assert_eq!(values(&options, "name"), core, "www/options.js CALIBRATION_METHODS names, in the core's order");
    let labels: Vec<&str> = Calibration::ALL.iter().map(label).collect();
    assert_eq!(values(&options, "label"), labels, "www/options.js labels");

    let mut with_auto: BTreeSet<String> = core.iter().map(|s| s.to_string()).collect();
    with_auto.insert("auto".into());
    let hash = www("hash.js");
    let line = hash.lines().find(|l| l.contains("export const DETECTOR_METHODS")).expect("DETECTOR_METHODS in hash.js");
    let listed: BTreeSet<String> = line.split('\'').skip(1).step_by(2).map(String::from).collect();
    assert_eq!(listed, with_auto, "www/hash.js DETECTOR_METHODS");

    let template = www("components/detector/template.js");
    let picker = template.split("select name=\"method\"").nth(1).and_then(|s| s.split("</select>").next()).unwrap();
    let offered: BTreeSet<String> =
        picker.split("value=\"").skip(1).filter_map(|s| s.split('"').next()).map(String::from).collect();
    assert_eq!(offered, with_auto, "the detector's method picker (template.js)");
}
