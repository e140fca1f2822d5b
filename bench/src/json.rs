//! A hand-written JSON value, just enough to print the results.

use std::fmt::Write;

/// A JSON value.
pub enum J {
    /// A finite number (non-finite numbers print as `null`).
    Num(f64),
    /// An unsigned integer.
    Int(u64),
    /// A string.
    Str(String),
    /// A boolean.
    Bool(bool),
    /// `null`.
    Null,
    /// An object, keys in insertion order.
    Obj(Vec<(String, J)>),
}

impl J {
    /// A number.
    pub fn num(x: f64) -> J {
        J::Num(x)
    }

    /// An integer.
    pub fn int(x: u64) -> J {
        J::Int(x)
    }

    /// A string.
    pub fn str(s: &str) -> J {
        J::Str(s.to_string())
    }

    /// An object from `(key, value)` pairs.
    pub fn obj<K: Into<String>>(items: impl IntoIterator<Item = (K, J)>) -> J {
        J::Obj(items.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// This object with more members (a non-object is returned unchanged).
    pub fn extend(self, more: Vec<(&str, J)>) -> J {
        match self {
            J::Obj(mut items) => {
                items.extend(more.into_iter().map(|(k, v)| (k.to_string(), v)));
                J::Obj(items)
            }
            other => other,
        }
    }

    /// The compact JSON text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        match self {
            J::Num(x) if x.is_finite() => {
                // Display of f64 never uses exponents: valid JSON. Three decimals suffice.
                let r = (x * 1000.0).round() / 1000.0;
                let _ = write!(out, "{r}");
            }
            J::Num(_) | J::Null => out.push_str("null"),
            J::Int(x) => {
                let _ = write!(out, "{x}");
            }
            J::Str(s) => write_str(out, s),
            J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            J::Obj(items) => {
                out.push('{');
                for (i, (k, v)) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_str(out, k);
                    out.push(':');
                    v.write(out);
                }
                out.push('}');
            }
        }
    }
}

fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_nested_objects_and_escapes() {
        let j = J::obj([
            ("a", J::num(1.5)),
            ("b", J::str("x\"y\n")),
            ("c", J::obj([("d", J::Bool(true)), ("e", J::num(f64::NAN))])),
        ])
        .extend(vec![("f", J::int(7))]);
        assert_eq!(
            j.render(),
            r#"{"a":1.5,"b":"x\"y\n","c":{"d":true,"e":null},"f":7}"#
        );
    }
}
