//! Option values that are one of a fixed list the core owns (calibration methods, bit widths):
//! parsed by the core's own function, listed from the core's own table, so `--help`, shell
//! completions and the "possible values" of an error cannot drift from what the core accepts.

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use qplay_core::quant::{Calibration, QType};
use std::ffi::OsStr;

/// A value parser for one of `names` (shown in help, completions and errors), parsed by
/// `parse` (which may accept more spellings than `names`, e.g. aliases or any case).
#[derive(Clone)]
pub struct CoreChoice<T> {
    names: fn() -> Vec<String>,
    parse: fn(&str) -> Option<T>,
}

impl<T: Clone + Send + Sync + 'static> TypedValueParser for CoreChoice<T> {
    type Value = T;

    fn parse_ref(&self, cmd: &clap::Command, arg: Option<&clap::Arg>, value: &OsStr) -> Result<T, clap::Error> {
        if let Some(v) = value.to_str().and_then(self.parse) {
            return Ok(v);
        }
        // clap's own error: "invalid value …", the possible values, a suggestion for a typo.
        let names = (self.names)();
        PossibleValuesParser::new(names.iter().map(|n| PossibleValue::new(n.clone()))).parse_ref(cmd, arg, value)?;
        // A listed name `parse` refuses: a bug in the table, said as such rather than a panic.
        Err(clap::Error::raw(
            clap::error::ErrorKind::InvalidValue,
            format!("{value:?} is listed but not accepted by the core (qplay bug)\n"),
        ))
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new((self.names)().into_iter().map(PossibleValue::new)))
    }
}

/// `--method`: the core's calibration methods ([`Calibration::ALL`], [`Calibration::parse`],
/// which also takes its aliases: `kl`, `min_max`, `moving-average`, …, in any case).
pub fn method() -> CoreChoice<Calibration> {
    CoreChoice {
        names: || Calibration::ALL.iter().map(|c| c.name().to_string()).collect(),
        parse: |s| Calibration::parse(s).ok(),
    }
}

/// `--bits`: the widths [`QType::new`] accepts (2 to 8, and 16).
pub fn bits() -> CoreChoice<u8> {
    CoreChoice {
        names: || (1..=32u8).filter(|&b| QType::new(b, true, false).is_ok()).map(|b| b.to_string()).collect(),
        parse: |s| s.parse::<u8>().ok().filter(|&b| QType::new(b, true, false).is_ok()),
    }
}

/// A count that must be at least 1 (`--iters`).
pub fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse<T: Clone + Send + Sync + 'static>(p: &CoreChoice<T>, s: &str) -> Result<T, clap::Error> {
        p.parse_ref(&clap::Command::new("t"), None, OsStr::new(s))
    }

    #[test]
    fn methods_are_the_cores_with_its_aliases() {
        let names: Vec<String> = method().possible_values().unwrap().map(|v| v.get_name().to_string()).collect();
        assert_eq!(names, ["minmax", "ema", "percentile", "entropy", "mse"]);
        for n in &names {
            assert_eq!(parse(&method(), n).unwrap().name(), n);
        }
        assert_eq!(parse(&method(), "KL").unwrap(), Calibration::Entropy);
        assert_eq!(parse(&method(), "min_max").unwrap(), Calibration::MinMax);
        let e = parse(&method(), "magic").unwrap_err().to_string();
        assert!(e.contains("[possible values: minmax, ema, percentile, entropy, mse]"), "{e}");
    }

    #[test]
    fn bit_widths_are_the_ones_the_core_accepts() {
        let names: Vec<String> = bits().possible_values().unwrap().map(|v| v.get_name().to_string()).collect();
        assert_eq!(names, ["2", "3", "4", "5", "6", "7", "8", "16"]);
        assert_eq!(parse(&bits(), "16").unwrap(), 16);
        for bad in ["1", "9", "32", "300", "-8", "x"] {
            assert!(parse(&bits(), bad).is_err(), "{bad}");
        }
        assert_eq!(at_least_one("1"), Ok(1));
        assert!(at_least_one("0").unwrap_err().contains("at least 1"));
    }
}
