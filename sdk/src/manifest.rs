//! The manifest: what a plugin tells the host about itself before it runs.
//!
//! [`export_strategy!`](crate::export_strategy) describes the plugin with a
//! [`Manifest`] constant and encodes it, at compile time, into the
//! `cw_manifest` custom section as one UTF-8 JSON object:
//!
//! ```json
//! {"abi":1,"name":"sma_cross","version":"0.1.0","description":"...",
//!  "params":[{"name":"fast","type":"int","default":10,"min":2,"max":500,"doc":"..."}],
//!  "indicators":["sma({fast})","sma({slow})"],"models":[]}
//! ```
//!
//! Numbers are kept as the source text of the literals the author wrote
//! (`stringify!`), so no float formatting happens at compile time; the
//! encoder drops `_` separators and type suffixes (`10_000u32` becomes
//! `10000`). Strings are JSON-escaped. The host parses and validates the
//! JSON at load and refuses the plugin if anything is off.
//!
//! Indicator items may name integer parameters in braces: `sma({fast})`
//! becomes `sma(10)` with `fast = 10`.

/// The type of a parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// A whole number (carried as an exact `f64`, so within ±2^53).
    Int,
    /// A finite floating-point number.
    Float,
    /// `true` or `false` (carried as 1.0 or 0.0).
    Bool,
}

impl ParamKind {
    /// The manifest's name for the kind.
    pub const fn as_str(self) -> &'static str {
        match self {
            ParamKind::Int => "int",
            ParamKind::Float => "float",
            ParamKind::Bool => "bool",
        }
    }
}

/// One declared parameter. Numbers are literal source text (see module docs).
#[derive(Debug, Clone, Copy)]
pub struct ParamSpec {
    pub name: &'static str,
    pub kind: ParamKind,
    pub default: &'static str,
    /// Inclusive lower bound, or `""` for none.
    pub min: &'static str,
    /// Inclusive upper bound, or `""` for none.
    pub max: &'static str,
    pub doc: &'static str,
}

/// Everything the host needs to know before instantiating the plugin.
#[derive(Debug, Clone, Copy)]
pub struct Manifest {
    pub name: &'static str,
    pub version: &'static str,
    pub description: &'static str,
    pub params: &'static [ParamSpec],
    /// Indicator spec items, in the order their columns appear in each bar.
    pub indicators: &'static [&'static str],
    /// Model outputs, placed after the indicator columns, in this order.
    pub models: &'static [&'static str],
}

impl Manifest {
    /// Index of the parameter called `name`, in declaration order.
    pub fn param_index(&self, name: &str) -> Option<usize> {
        self.params.iter().position(|p| p.name == name)
    }
}

// The encoder runs twice over the same steps, first counting and then
// writing, because a const fn cannot allocate: `encoded_len` sizes the array
// that `encode` fills.

/// Bytes of the JSON encoding of `m`.
pub const fn encoded_len(m: &Manifest) -> usize {
    let mut w = Writer::<0> {
        buf: [],
        len: 0,
        counting: true,
    };
    w.manifest(m);
    w.len
}

/// The JSON encoding of `m`; `N` must be [`encoded_len`]`(m)`.
///
/// # Panics
/// At compile time (it runs in a `const`) when `N` is wrong.
pub const fn encode<const N: usize>(m: &Manifest) -> [u8; N] {
    let mut w = Writer::<N> {
        buf: [0; N],
        len: 0,
        counting: false,
    };
    w.manifest(m);
    assert!(w.len == N, "manifest length mismatch");
    w.buf
}

struct Writer<const N: usize> {
    buf: [u8; N],
    len: usize,
    counting: bool,
}

impl<const N: usize> Writer<N> {
    const fn byte(&mut self, b: u8) {
        if !self.counting {
            self.buf[self.len] = b;
        }
        self.len += 1;
    }

    const fn raw(&mut self, s: &str) {
        let b = s.as_bytes();
        let mut i = 0;
        while i < b.len() {
            self.byte(b[i]);
            i += 1;
        }
    }

    const fn string(&mut self, s: &str) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        self.byte(b'"');
        let b = s.as_bytes();
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            if c == b'"' || c == b'\\' {
                self.byte(b'\\');
                self.byte(c);
            } else if c < 0x20 {
                self.raw("\\u00");
                self.byte(HEX[(c >> 4) as usize]);
                self.byte(HEX[(c & 15) as usize]);
            } else {
                self.byte(c);
            }
            i += 1;
        }
        self.byte(b'"');
    }

    /// A number from literal source text: `_` dropped, a type suffix
    /// (`i64`, `u32`, `f64`, ...) cut off, spaces (from `stringify!` of a
    /// negative literal) dropped.
    const fn number(&mut self, s: &str) {
        let b = s.as_bytes();
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            if c == b'i' || c == b'u' || c == b'f' {
                break;
            }
            if c != b'_' && c != b' ' {
                self.byte(c);
            }
            i += 1;
        }
    }

    const fn string_list(&mut self, items: &[&str]) {
        self.byte(b'[');
        let mut i = 0;
        while i < items.len() {
            if i > 0 {
                self.byte(b',');
            }
            self.string(items[i]);
            i += 1;
        }
        self.byte(b']');
    }

    const fn manifest(&mut self, m: &Manifest) {
        self.raw("{\"abi\":1,\"name\":");
        self.string(m.name);
        self.raw(",\"version\":");
        self.string(m.version);
        self.raw(",\"description\":");
        self.string(m.description);
        self.raw(",\"params\":[");
        let mut i = 0;
        while i < m.params.len() {
            let p = &m.params[i];
            if i > 0 {
                self.byte(b',');
            }
            self.raw("{\"name\":");
            self.string(p.name);
            self.raw(",\"type\":");
            self.string(p.kind.as_str());
            self.raw(",\"default\":");
            if matches!(p.kind, ParamKind::Bool) {
                self.raw(p.default);
            } else {
                self.number(p.default);
            }
            if !p.min.is_empty() {
                self.raw(",\"min\":");
                self.number(p.min);
            }
            if !p.max.is_empty() {
                self.raw(",\"max\":");
                self.number(p.max);
            }
            self.raw(",\"doc\":");
            self.string(p.doc);
            self.byte(b'}');
            i += 1;
        }
        self.raw("],\"indicators\":");
        self.string_list(m.indicators);
        self.raw(",\"models\":");
        self.string_list(m.models);
        self.byte(b'}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: Manifest = Manifest {
        name: "t\"x",
        version: "1.0.0",
        description: "line\nbreak",
        params: &[
            ParamSpec {
                name: "fast",
                kind: ParamKind::Int,
                default: "10_000u32",
                min: "- 2",
                max: "",
                doc: "",
            },
            ParamSpec {
                name: "on",
                kind: ParamKind::Bool,
                default: "true",
                min: "",
                max: "",
                doc: "d",
            },
        ],
        indicators: &["sma({fast})"],
        models: &[],
    };
    const LEN: usize = encoded_len(&M);
    const BYTES: [u8; LEN] = encode::<LEN>(&M);

    #[test]
    fn encodes_escaped_json_with_cleaned_numbers() {
        let s = core::str::from_utf8(&BYTES).unwrap();
        assert_eq!(
            s,
            r#"{"abi":1,"name":"t\"x","version":"1.0.0","description":"line\u000abreak","params":[{"name":"fast","type":"int","default":10000,"min":-2,"doc":""},{"name":"on","type":"bool","default":true,"doc":"d"}],"indicators":["sma({fast})"],"models":[]}"#
        );
    }
}
