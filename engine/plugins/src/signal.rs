//! Signals as the host hands them on, and the check every guest output passes.

use candlewick_sdk::abi::{Action, SignalRecord};

/// A validated signal. `bar` is the index in the batch given to
/// [`Plugin::run_batch`](crate::Plugin::run_batch); `time` is that bar's
/// open time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PluginSignal {
    pub bar: usize,
    pub time: i64,
    pub action: Action,
    /// Finite, in `[-1, 1]`.
    pub strength: f64,
    /// Finite and positive when present.
    pub stop_loss: Option<f64>,
    /// Finite and positive when present.
    pub take_profit: Option<f64>,
    pub tag: u32,
}

/// Checks one guest record of a call over `n` bars, whose bar must be at
/// least `min_bar` (one past the previous record's). The output is
/// untrusted: anything outside the ABI's rules is refused, with the reason.
pub(crate) fn validate(r: &SignalRecord, n: u32, min_bar: u32) -> Result<PluginSignal, String> {
    if r.bar >= n {
        return Err(format!("signal for bar {} of a {n}-bar batch", r.bar));
    }
    if r.bar < min_bar {
        return Err(format!(
            "signal for bar {} out of order (or repeated)",
            r.bar
        ));
    }
    let action =
        Action::from_u32(r.action).ok_or_else(|| format!("action {} is not 0..=3", r.action))?;
    if !(r.strength.is_finite() && (-1.0..=1.0).contains(&r.strength)) {
        return Err(format!(
            "strength {} is not a finite number in [-1, 1]",
            r.strength
        ));
    }
    let price = |what: &str, v: f64| -> Result<Option<f64>, String> {
        if v.is_nan() {
            Ok(None)
        } else if v.is_finite() && v > 0.0 {
            Ok(Some(v))
        } else {
            Err(format!(
                "{what} {v} is neither NaN (none) nor a positive price"
            ))
        }
    };
    Ok(PluginSignal {
        bar: r.bar as usize,
        time: 0,
        action,
        strength: r.strength,
        stop_loss: price("stop_loss", r.stop_loss)?,
        take_profit: price("take_profit", r.take_profit)?,
        tag: r.tag,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(bar: u32, action: u32, strength: f64) -> SignalRecord {
        SignalRecord {
            bar,
            action,
            strength,
            stop_loss: f64::NAN,
            take_profit: f64::NAN,
            tag: 0,
            reserved: 0,
        }
    }

    #[test]
    fn accepts_a_well_formed_record() {
        let s = validate(
            &SignalRecord {
                stop_loss: 90.0,
                ..rec(2, 1, -1.0)
            },
            3,
            0,
        )
        .unwrap();
        assert_eq!(
            (s.bar, s.action, s.stop_loss, s.take_profit),
            (2, Action::Buy, Some(90.0), None)
        );
    }

    #[test]
    fn refuses_each_kind_of_bad_output() {
        assert!(validate(&rec(3, 1, 0.5), 3, 0)
            .unwrap_err()
            .contains("bar 3 of a 3-bar"));
        assert!(validate(&rec(1, 1, 0.5), 3, 2)
            .unwrap_err()
            .contains("out of order"));
        assert!(validate(&rec(0, 4, 0.5), 3, 0)
            .unwrap_err()
            .contains("action 4"));
        for s in [1.5, -1.01, f64::NAN, f64::INFINITY] {
            assert!(
                validate(&rec(0, 1, s), 3, 0)
                    .unwrap_err()
                    .contains("strength"),
                "{s}"
            );
        }
        for p in [0.0, -5.0, f64::INFINITY] {
            assert!(
                validate(
                    &SignalRecord {
                        take_profit: p,
                        ..rec(0, 1, 0.0)
                    },
                    3,
                    0
                )
                .is_err(),
                "{p}"
            );
        }
    }
}
