//! Hand-rolled parsing of `--name value` and `--flag` arguments.

use std::collections::HashMap;
use std::str::FromStr;

/// Parsed arguments of one subcommand.
#[derive(Debug, Default)]
pub struct Args {
    values: HashMap<String, String>,
    flags: Vec<String>,
}

/// Options that take no value.
const FLAGS: [&str; 3] = ["stop", "commit", "spread"];

impl Args {
    /// Parses `--name value` pairs and the known value-less flags.
    pub fn parse(items: impl IntoIterator<Item = String>) -> Result<Args, String> {
        let mut args = Args::default();
        let mut items = items.into_iter();
        while let Some(item) = items.next() {
            let Some(name) = item.strip_prefix("--") else {
                return Err(format!("unexpected argument {item:?}"));
            };
            if FLAGS.contains(&name) {
                args.flags.push(name.to_string());
                continue;
            }
            let value = items
                .next()
                .ok_or_else(|| format!("--{name} needs a value"))?;
            if args.values.insert(name.to_string(), value).is_some() {
                return Err(format!("--{name} given twice"));
            }
        }
        Ok(args)
    }

    /// The raw value of `--name`.
    pub fn str(&self, name: &str) -> Result<&str, String> {
        self.values
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| format!("missing --{name}"))
    }

    /// `--name` parsed as `T`.
    pub fn get<T: FromStr>(&self, name: &str) -> Result<T, String> {
        let raw = self.str(name)?;
        raw.parse()
            .map_err(|_| format!("--{name}: cannot parse {raw:?}"))
    }

    /// `--name` parsed as `T`, or `default` when absent.
    pub fn get_or<T: FromStr>(&self, name: &str, default: T) -> Result<T, String> {
        if self.values.contains_key(name) {
            self.get(name)
        } else {
            Ok(default)
        }
    }

    /// `--name` parsed as `T` if given.
    pub fn opt<T: FromStr>(&self, name: &str) -> Result<Option<T>, String> {
        if self.values.contains_key(name) {
            self.get(name).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Whether the value-less `--name` was given.
    pub fn flag(&self, name: &str) -> bool {
        self.flags.iter().any(|f| f == name)
    }
}

#[cfg(test)]
mod tests {
    use super::Args;

    fn parse(s: &str) -> Result<Args, String> {
        Args::parse(s.split_whitespace().map(String::from))
    }

    #[test]
    fn values_flags_and_errors() {
        let a = parse("--count 5 --stop --store /x").unwrap();
        assert_eq!(a.get::<u64>("count").unwrap(), 5);
        assert_eq!(a.str("store").unwrap(), "/x");
        assert!(a.flag("stop"));
        assert_eq!(a.get_or("batch", 3u64).unwrap(), 3);
        assert!(a.get::<u64>("missing").is_err());
        assert!(parse("--count").is_err());
        assert!(parse("count 5").is_err());
        assert!(parse("--count 1 --count 2").is_err());
        assert!(parse("--count x").unwrap().get::<u64>("count").is_err());
    }
}
