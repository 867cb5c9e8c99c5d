//! A small command-line parser: `--flag`, `--key value`, `--key=value` and positionals, with
//! errors that say what was expected.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::str::FromStr;

/// Parsed arguments of one subcommand.
#[derive(Debug, Default)]
pub struct Args {
    values: BTreeMap<String, String>,
    flags: Vec<String>,
    pub positional: Vec<String>,
}

impl Args {
    /// Parses `argv` given the option names that take a value and those that are bare flags.
    pub fn parse(argv: &[String], valued: &[&str], flags: &[&str]) -> Result<Args, String> {
        let mut a = Args::default();
        let mut it = argv.iter();
        while let Some(arg) = it.next() {
            let short = arg.strip_prefix('-').filter(|n| n.len() == 1 && valued.contains(n));
            if let Some(name) = arg.strip_prefix("--").or(short) {
                let (name, inline) = match name.split_once('=') {
                    Some((n, v)) => (n, Some(v.to_string())),
                    None => (name, None),
                };
                if valued.contains(&name) {
                    let v = match inline {
                        Some(v) => v,
                        None => it.next().cloned().ok_or_else(|| format!("--{name} needs a value"))?,
                    };
                    a.values.insert(name.to_string(), v);
                } else if flags.contains(&name) {
                    if inline.is_some() {
                        return Err(format!("--{name} takes no value"));
                    }
                    a.flags.push(name.to_string());
                } else {
                    return Err(format!("unknown option --{name}"));
                }
            } else if arg.len() > 1 && arg.starts_with('-') && arg.parse::<f64>().is_err() {
                return Err(format!("unknown option {arg} (options start with --)"));
            } else {
                a.positional.push(arg.clone());
            }
        }
        Ok(a)
    }

    /// Whether a bare flag was given.
    pub fn flag(&self, name: &str) -> bool {
        self.flags.iter().any(|f| f == name)
    }

    /// The raw value of an option.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(|s| s.as_str())
    }

    /// A typed value, if given.
    pub fn opt<T: FromStr>(&self, name: &str) -> Result<Option<T>, String>
    where
        T::Err: Display,
    {
        self.get(name).map(|v| v.parse::<T>().map_err(|e| format!("--{name} {v:?}: {e}"))).transpose()
    }

    /// A typed value that must be given.
    pub fn req<T: FromStr>(&self, name: &str) -> Result<T, String>
    where
        T::Err: Display,
    {
        self.opt(name)?.ok_or_else(|| format!("--{name} is required"))
    }
}
