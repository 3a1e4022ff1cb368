//! The Zig SDK for Candlewick strategy plugins (ABI v1, sdk/ABI.md).
//!
//! One file, no allocator, no std at run time. Write a strategy type and
//! export it with its manifest:
//!
//! ```zig
//! const cw = @import("candlewick.zig");
//!
//! const UpClose = struct {
//!     pub fn init(p: cw.Params) cw.InitResult(UpClose) { _ = p; return .{ .ok = .{} }; }
//!     pub fn onBar(self: *UpClose, bar: cw.Bar) ?cw.Signal {
//!         _ = self;
//!         return if (bar.close() > bar.open()) cw.Signal.buy(1.0) else null;
//!     }
//! };
//!
//! comptime {
//!     cw.exportStrategy(UpClose);
//!     asm (cw.manifestSection(
//!         \\{"abi":1,"name":"up_close","version":"0.1.0"}
//!     ));
//! }
//! ```
//!
//! Optional methods, found by name: `snapshot(self: *const S, buf: []u8) ?usize`
//! (bytes written, or null for none) and `restore(self: *S, bytes: []const u8) bool`.
//! Optional declarations: `pub const batch_capacity: u32` (default 64),
//! `max_values` (default 16), `max_params` (default 32), `snapshot_max`
//! (default 1024 bytes).
//!
//! Build (`candlewick plugin build DIR` runs this; Zig 0.14.1 from PyPI's
//! `ziglang` wheel, see scripts/install-toolchains):
//!
//!     python -m ziglang build-exe -target wasm32-freestanding -O ReleaseSmall \
//!         -fno-entry -rdynamic --dep candlewick -Mroot=my_plugin.zig \
//!         -Mcandlewick=sdk/zig/candlewick.zig -femit-bin=my_plugin.wasm

pub const abi_version: u32 = 1;

/// Return codes (sdk/ABI.md §4).
pub const Code = struct {
    pub const ok: i32 = 0;
    pub const bad_input: i32 = -1;
    pub const init_failed: i32 = -2;
    pub const not_initialised: i32 = -3;
    pub const batch_too_large: i32 = -4;
    pub const restore_rejected: i32 = -5;
    pub const no_snapshot: i32 = -6;
};

// ---- Records, exactly as the host reads and writes them ------------------

pub const InitHeader = extern struct {
    abi_version: u32,
    n_values: u32,
    n_params: u32,
    n_models: u32,
};

pub const IoLayout = extern struct {
    abi_version: u32,
    bar_stride: u32,
    input_ptr: u32,
    input_capacity: u32,
    output_ptr: u32,
    output_capacity: u32,
};

pub const BarHeader = extern struct {
    /// Open time, ms since the Unix epoch, UTC.
    time: i64,
    open: f64,
    high: f64,
    low: f64,
    close: f64,
    volume: f64,
};

pub const SignalRecord = extern struct {
    bar: u32,
    action: u32,
    strength: f64,
    stop_loss: f64,
    take_profit: f64,
    tag: u32,
    reserved: u32,
};

comptime {
    if (@sizeOf(InitHeader) != 16 or @sizeOf(IoLayout) != 24 or
        @sizeOf(BarHeader) != 48 or @sizeOf(SignalRecord) != 40 or
        @alignOf(SignalRecord) != 8)
        @compileError("record layout differs from sdk/ABI.md");
}

// ---- What a strategy sees --------------------------------------------------

pub const nan: f64 = @as(f64, @bitCast(@as(u64, 0x7ff8000000000000)));

pub fn isNan(v: f64) bool {
    return v != v;
}

/// The checked parameter values, in manifest order (ints are whole, bools 0 or 1).
pub const Params = struct {
    values: []const f64,

    pub fn float(self: Params, i: usize) f64 {
        return if (i < self.values.len) self.values[i] else nan;
    }

    pub fn int(self: Params, i: usize) i64 {
        const v = self.float(i);
        return if (isNan(v)) 0 else @intFromFloat(v);
    }

    pub fn boolean(self: Params, i: usize) bool {
        return self.float(i) != 0.0;
    }
};

/// What `init` returns: the strategy, or a message for the operator.
pub fn InitResult(comptime S: type) type {
    return union(enum) { ok: S, err: []const u8 };
}

/// One closed bar and its values (indicator columns, then model outputs).
/// NaN means "not available" (warming up, or no model output).
pub const Bar = struct {
    head: *const BarHeader,
    values: []const f64,
    n_models: usize,
    /// Position in this call's batch.
    index: usize,

    pub fn time(self: Bar) i64 {
        return self.head.time;
    }
    pub fn open(self: Bar) f64 {
        return self.head.open;
    }
    pub fn high(self: Bar) f64 {
        return self.head.high;
    }
    pub fn low(self: Bar) f64 {
        return self.head.low;
    }
    pub fn close(self: Bar) f64 {
        return self.head.close;
    }
    pub fn volume(self: Bar) f64 {
        return self.head.volume;
    }

    /// Indicator column `i`, or null while warming up (NaN) or past the end.
    pub fn indicator(self: Bar, i: usize) ?f64 {
        if (i >= self.values.len - self.n_models) return null;
        const v = self.values[i];
        return if (isNan(v)) null else v;
    }

    /// Model output `i`, or null when absent.
    pub fn model(self: Bar, i: usize) ?f64 {
        if (i >= self.n_models) return null;
        const v = self.values[self.values.len - self.n_models + i];
        return if (isNan(v)) null else v;
    }
};

pub const Action = enum(u32) { hold = 0, buy = 1, sell = 2, exit = 3 };

/// What a strategy says about a bar. Strength finite in [-1, 1]; stops NaN for none.
pub const Signal = struct {
    action: Action,
    strength: f64,
    stop_loss: f64 = nan,
    take_profit: f64 = nan,
    tag: u32 = 0,

    pub fn buy(strength: f64) Signal {
        return .{ .action = .buy, .strength = strength };
    }
    pub fn sell(strength: f64) Signal {
        return .{ .action = .sell, .strength = strength };
    }
    pub fn exit() Signal {
        return .{ .action = .exit, .strength = 0.0 };
    }
};

// ---- Host imports -----------------------------------------------------------

extern "cw" fn log(level: i32, ptr: [*]const u8, len: i32) void;
extern "cw" fn metric(ptr: [*]const u8, len: i32, value: f64) void;
extern "cw" fn now_ms() i64;

pub const Level = enum(i32) { err = 0, warn = 1, info = 2, debug = 3, trace = 4 };

/// One log line (an error line is shown to the operator when init fails).
pub fn logLine(level: Level, text: []const u8) void {
    log(@intFromEnum(level), text.ptr, @intCast(text.len));
}

/// Sets the plugin's gauge `name`.
pub fn setMetric(name: []const u8, value: f64) void {
    metric(name.ptr, @intCast(name.len), value);
}

/// Event time of the current call (the newest bar's open time), ms.
pub fn nowMs() i64 {
    return now_ms();
}

/// Little-endian helpers for snapshots (wasm is little-endian).
pub fn putF64(buf: []u8, v: f64) void {
    @memcpy(buf[0..8], &@as([8]u8, @bitCast(v)));
}
pub fn getF64(buf: []const u8) f64 {
    return @bitCast(buf[0..8].*);
}

// ---- The manifest and the exports -----------------------------------------------

/// `s` as the inside of an assembler string literal.
fn asmEscape(comptime s: []const u8) []const u8 {
    comptime var out: []const u8 = "";
    inline for (s) |c| {
        out = out ++ switch (c) {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            else => &[_]u8{c},
        };
    }
    return out;
}

fn option(comptime S: type, comptime name: []const u8, comptime default: u32) u32 {
    return if (@hasDecl(S, name)) @field(S, name) else default;
}

/// The assembly that places `json` (the manifest of sdk/ABI.md §2) in the
/// `cw_manifest` custom section. Zig allows global assembly only directly
/// in a container-level `comptime` block, so the plugin writes
/// `comptime { asm (cw.manifestSection(json)); }` itself.
pub fn manifestSection(comptime json: []const u8) []const u8 {
    @setEvalBranchQuota(100_000);
    return ".section .custom_section.cw_manifest,\"\",@\n.ascii \"" ++ asmEscape(json) ++ "\"\n";
}

/// Exports strategy `S`: every ABI function (`cw_snapshot` and `cw_restore`
/// only when `S` has `snapshot` and `restore`). Call once, in a `comptime`
/// block.
pub fn exportStrategy(comptime S: type) void {

    const capacity = option(S, "batch_capacity", 64);
    const max_values = option(S, "max_values", 16);
    const max_params = option(S, "max_params", 32);
    const snapshot_max = option(S, "snapshot_max", 1024);
    const scratch_words = @max(2 + max_params, (snapshot_max + 7) / 8);

    const Rt = struct {
        var strategy: ?S = null;
        var scratch: [scratch_words]u64 = undefined;
        var input: [capacity * (6 + max_values)]u64 = undefined;
        var output: [capacity]SignalRecord = undefined;
        var snap: [snapshot_max]u8 = undefined;
        var params: [max_params]f64 = undefined;
        var layout: IoLayout = undefined;
        var n_values: u32 = 0;
        var n_models: u32 = 0;

        fn addr(p: anytype) u32 {
            return @intCast(@intFromPtr(p));
        }

        fn abiVersion() callconv(.C) i32 {
            return abi_version;
        }

        fn alloc(len: i32) callconv(.C) i32 {
            if (len < 0 or @as(u32, @intCast(len)) > @sizeOf(@TypeOf(scratch))) return 0;
            return @intCast(addr(&scratch));
        }

        fn init(ptr: i32, len: i32) callconv(.C) i32 {
            if (ptr != @as(i32, @intCast(addr(&scratch))) or len < 16 or
                @as(u32, @intCast(len)) > @sizeOf(@TypeOf(scratch))) return Code.bad_input;
            const h: *const InitHeader = @ptrCast(&scratch);
            if (h.abi_version != abi_version or h.n_models > h.n_values or
                h.n_params > max_params or @as(u32, @intCast(len)) != 16 + 8 * h.n_params)
                return Code.bad_input;
            if (h.n_values > max_values) {
                logLine(.err, "more values per bar than max_values: raise it");
                return Code.bad_input;
            }
            for (0..h.n_params) |i| params[i] = @bitCast(scratch[2 + i]);
            strategy = null;
            switch (S.init(.{ .values = params[0..h.n_params] })) {
                .ok => |s| strategy = s,
                .err => |message| {
                    logLine(.err, message);
                    return Code.init_failed;
                },
            }
            n_values = h.n_values;
            n_models = h.n_models;
            layout = .{
                .abi_version = abi_version,
                .bar_stride = 48 + 8 * n_values,
                .input_ptr = addr(&input),
                .input_capacity = capacity,
                .output_ptr = addr(&output),
                .output_capacity = capacity,
            };
            return Code.ok;
        }

        fn ioLayout() callconv(.C) i32 {
            return @intCast(addr(&layout));
        }

        fn onBatch(n: i32) callconv(.C) i32 {
            const s = if (strategy) |*s| s else return Code.not_initialised;
            if (n < 0 or n > capacity) return Code.batch_too_large;
            const stride = 6 + n_values;
            var k: usize = 0;
            for (0..@intCast(n)) |i| {
                const rec = input[i * stride ..][0..stride];
                const bar = Bar{
                    .head = @ptrCast(rec.ptr),
                    .values = @as([*]const f64, @ptrCast(rec.ptr + 6))[0..n_values],
                    .n_models = n_models,
                    .index = i,
                };
                if (s.onBar(bar)) |sig| {
                    output[k] = .{
                        .bar = @intCast(i),
                        .action = @intFromEnum(sig.action),
                        .strength = sig.strength,
                        .stop_loss = sig.stop_loss,
                        .take_profit = sig.take_profit,
                        .tag = sig.tag,
                        .reserved = 0,
                    };
                    k += 1;
                }
            }
            return @intCast(k);
        }

        fn snapshot() callconv(.C) i64 {
            const s = if (strategy) |*s| s else return Code.not_initialised;
            const len = s.snapshot(&snap) orelse return Code.no_snapshot;
            if (len > snapshot_max) return Code.no_snapshot;
            return (@as(i64, @intCast(len)) << 32) | @as(i64, addr(&snap));
        }

        fn restore(ptr: i32, len: i32) callconv(.C) i32 {
            const s = if (strategy) |*s| s else return Code.not_initialised;
            if (ptr != @as(i32, @intCast(addr(&scratch))) or len < 0 or
                @as(u32, @intCast(len)) > @sizeOf(@TypeOf(scratch))) return Code.bad_input;
            const bytes = @as([*]const u8, @ptrCast(&scratch))[0..@intCast(len)];
            return if (s.restore(bytes)) Code.ok else Code.restore_rejected;
        }
    };

    @export(&Rt.abiVersion, .{ .name = "cw_abi_version" });
    @export(&Rt.alloc, .{ .name = "cw_alloc" });
    @export(&Rt.init, .{ .name = "cw_init" });
    @export(&Rt.ioLayout, .{ .name = "cw_io_layout" });
    @export(&Rt.onBatch, .{ .name = "cw_on_batch" });
    if (@hasDecl(S, "snapshot") and @hasDecl(S, "restore")) {
        @export(&Rt.snapshot, .{ .name = "cw_snapshot" });
        @export(&Rt.restore, .{ .name = "cw_restore" });
    }
}
