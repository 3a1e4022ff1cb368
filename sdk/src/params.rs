//! Parameter values as the strategy receives them in [`Strategy::init`](crate::Strategy::init).

use alloc::borrow::Cow;

use crate::manifest::{Manifest, ParamKind};
use crate::InitError;

/// The plugin's parameters, already checked by the host against the
/// manifest (type, range) and with defaults filled in.
///
/// Look values up by the names declared in
/// [`export_strategy!`](crate::export_strategy); asking for an undeclared
/// name, or with the wrong type, is an [`InitError`] naming it, so `?` is
/// all the handling a strategy needs.
#[derive(Debug, Clone, Copy)]
pub struct Params<'a> {
    manifest: &'a Manifest,
    values: &'a [f64],
}

impl<'a> Params<'a> {
    /// Values in manifest order.
    pub fn new(manifest: &'a Manifest, values: &'a [f64]) -> Self {
        Params { manifest, values }
    }

    fn lookup(&self, name: &str, kind: ParamKind) -> Result<f64, InitError> {
        let i = self
            .manifest
            .param_index(name)
            .ok_or_else(|| InitError::new(join("undeclared parameter ", name)))?;
        if self.manifest.params[i].kind != kind {
            return Err(InitError::new(join("parameter has another type: ", name)));
        }
        self.values
            .get(i)
            .copied()
            .ok_or_else(|| InitError::new(join("host passed no value for ", name)))
    }

    /// An `int` parameter.
    ///
    /// # Errors
    /// When `name` is not a declared `int` parameter.
    pub fn int(&self, name: &str) -> Result<i64, InitError> {
        self.lookup(name, ParamKind::Int).map(|v| v as i64)
    }

    /// A `float` parameter.
    ///
    /// # Errors
    /// When `name` is not a declared `float` parameter.
    pub fn float(&self, name: &str) -> Result<f64, InitError> {
        self.lookup(name, ParamKind::Float)
    }

    /// A `bool` parameter.
    ///
    /// # Errors
    /// When `name` is not a declared `bool` parameter.
    pub fn bool(&self, name: &str) -> Result<bool, InitError> {
        self.lookup(name, ParamKind::Bool).map(|v| v != 0.0)
    }

    /// All values, in manifest order.
    pub fn values(&self) -> &'a [f64] {
        self.values
    }
}

fn join(a: &str, b: &str) -> Cow<'static, str> {
    let mut s = alloc::string::String::with_capacity(a.len() + b.len());
    s.push_str(a);
    s.push_str(b);
    Cow::Owned(s)
}

/// The value of a manifest default, parsed from its literal text.
pub(crate) fn parse_default(kind: ParamKind, text: &str) -> Option<f64> {
    match kind {
        ParamKind::Bool => match text {
            "true" => Some(1.0),
            "false" => Some(0.0),
            _ => None,
        },
        ParamKind::Int | ParamKind::Float => {
            let mut buf = alloc::string::String::new();
            for c in text.chars() {
                if matches!(c, 'i' | 'u' | 'f') {
                    break;
                }
                if c != '_' && c != ' ' {
                    buf.push(c);
                }
            }
            buf.parse::<f64>().ok()
        }
    }
}
