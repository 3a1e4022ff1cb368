//! rsi_reversion in Zig: buy when RSI climbs back above the oversold line,
//! sell when it falls back below the overbought line. The same strategy,
//! parameters and manifest as plugins/rsi_reversion (Rust).
//!
//! A signal fires on the bar where RSI crosses back into the middle band.
//! Strength grows with how deep the extreme went, capped at 1. The state
//! (previous RSI and the extreme seen since) is snapshotted.
const cw = @import("candlewick");

/// The depth of the excursion, 0 when there was none (NaN).
fn depthOrZero(d: f64) f64 {
    return if (d > 0.0) d else 0.0;
}

/// Rust's f64::clamp: NaN stays NaN.
fn clamp01(v: f64) f64 {
    var x = v;
    if (x < 0.0) x = 0.0;
    if (x > 1.0) x = 1.0;
    return x;
}

const RsiReversion = struct {
    lower: f64,
    upper: f64,
    /// Previous RSI, NaN before the first.
    prev: f64 = cw.nan,
    /// Most extreme RSI since it left the middle band, or NaN.
    extreme: f64 = cw.nan,

    pub fn init(p: cw.Params) cw.InitResult(RsiReversion) {
        const lower = p.float(1);
        const upper = p.float(2);
        if (!(lower < upper)) return .{ .err = "lower must be below upper" };
        return .{ .ok = .{ .lower = lower, .upper = upper } };
    }

    pub fn onBar(self: *RsiReversion, bar: cw.Bar) ?cw.Signal {
        const rsi = bar.indicator(0) orelse return null;
        const before = self.prev;
        self.prev = rsi;
        var signal: ?cw.Signal = null;
        // The extreme is that of the excursion before this bar.
        if (!cw.isNan(before) and before < self.lower and rsi >= self.lower) {
            const depth = depthOrZero((self.lower - self.extreme) / @max(self.lower, 1.0));
            self.extreme = cw.nan;
            signal = cw.Signal.buy(clamp01(0.5 + depth));
        } else if (!cw.isNan(before) and before > self.upper and rsi <= self.upper) {
            const depth = depthOrZero((self.extreme - self.upper) / @max(100.0 - self.upper, 1.0));
            self.extreme = cw.nan;
            signal = cw.Signal.sell(clamp01(0.5 + depth));
        }
        // Then this bar joins the current excursion.
        if (rsi < self.lower) {
            if (cw.isNan(self.extreme) or rsi < self.extreme) self.extreme = rsi;
        } else if (rsi > self.upper) {
            if (cw.isNan(self.extreme) or rsi > self.extreme) self.extreme = rsi;
        }
        return signal;
    }

    pub fn snapshot(self: *const RsiReversion, buf: []u8) ?usize {
        cw.putF64(buf[0..8], self.prev);
        cw.putF64(buf[8..16], self.extreme);
        return 16;
    }

    pub fn restore(self: *RsiReversion, bytes: []const u8) bool {
        if (bytes.len != 16) return false;
        self.prev = cw.getF64(bytes[0..8]);
        self.extreme = cw.getF64(bytes[8..16]);
        return true;
    }
};

comptime {
    cw.exportStrategy(RsiReversion);
    asm (cw.manifestSection(
        \\{"abi":1,"name":"rsi_reversion","version":"0.1.0",
        \\ "description":"Buy when RSI leaves oversold, sell when it leaves overbought.",
        \\ "params":[
        \\  {"name":"period","type":"int","default":14,"min":2,"max":500,"doc":"RSI period (bars)"},
        \\  {"name":"lower","type":"float","default":30.0,"min":0.0,"max":100.0,"doc":"Oversold line"},
        \\  {"name":"upper","type":"float","default":70.0,"min":0.0,"max":100.0,"doc":"Overbought line"}],
        \\ "indicators":["rsi({period})"],
        \\ "models":[]}
    ));
}
