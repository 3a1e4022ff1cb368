//! sma_cross in Zig: buy when the fast SMA crosses above the slow one,
//! sell when it crosses below. The same strategy, parameters and manifest
//! as plugins/sma_cross (Rust); tests/sdk_languages.rs checks that a
//! backtest gives the same trades.
//!
//! Says nothing until both SMAs are warm and one cross has been seen (the
//! first bar only establishes which side the fast average is on). A tie
//! keeps the previous side. The side is snapshotted.
const cw = @import("candlewick");

const Side = enum(u8) { unknown = 0, below = 1, above = 2 };

const SmaCross = struct {
    side: Side = .unknown,

    const fast = 0;
    const slow = 1;

    pub fn init(p: cw.Params) cw.InitResult(SmaCross) {
        if (p.int(fast) >= p.int(slow)) return .{ .err = "fast must be shorter than slow" };
        return .{ .ok = .{} };
    }

    pub fn onBar(self: *SmaCross, bar: cw.Bar) ?cw.Signal {
        const f = bar.indicator(0) orelse return null;
        const s = bar.indicator(1) orelse return null;
        if (f == s) return null;
        const now: Side = if (f > s) .above else .below;
        const before = self.side;
        self.side = now;
        if (before == .below and now == .above) return cw.Signal.buy(1.0);
        if (before == .above and now == .below) return cw.Signal.sell(1.0);
        return null;
    }

    pub fn snapshot(self: *const SmaCross, buf: []u8) ?usize {
        buf[0] = @intFromEnum(self.side);
        return 1;
    }

    pub fn restore(self: *SmaCross, bytes: []const u8) bool {
        if (bytes.len != 1 or bytes[0] > 2) return false;
        self.side = @enumFromInt(bytes[0]);
        return true;
    }
};

comptime {
    cw.exportStrategy(SmaCross);
    asm (cw.manifestSection(
        \\{"abi":1,"name":"sma_cross","version":"0.1.0",
        \\ "description":"Buy when the fast SMA crosses above the slow SMA, sell on the cross below.",
        \\ "params":[
        \\  {"name":"fast","type":"int","default":10,"min":1,"max":1000,"doc":"Fast SMA period (bars)"},
        \\  {"name":"slow","type":"int","default":20,"min":2,"max":5000,"doc":"Slow SMA period (bars); must exceed fast"}],
        \\ "indicators":["sma({fast})","sma({slow})"],
        \\ "models":[]}
    ));
}
