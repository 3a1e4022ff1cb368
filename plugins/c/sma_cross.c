/*
 * sma_cross in C: buy when the fast SMA crosses above the slow one, sell
 * when it crosses below. The same strategy, parameters and manifest as
 * plugins/sma_cross (Rust); tests/sdk_languages.rs checks that a backtest
 * gives the same trades.
 *
 * Says nothing until both SMAs are warm and one cross has been seen (the
 * first bar only establishes which side the fast average is on). A tie
 * keeps the previous side. The side is snapshotted.
 */
#include "candlewick.h"

CW_MANIFEST({
    "abi": 1, "name": "sma_cross", "version": "0.1.0",
    "description": "Buy when the fast SMA crosses above the slow SMA, sell on the cross below.",
    "params": [
        {"name": "fast", "type": "int", "default": 10, "min": 1, "max": 1000,
         "doc": "Fast SMA period (bars)"},
        {"name": "slow", "type": "int", "default": 20, "min": 2, "max": 5000,
         "doc": "Slow SMA period (bars); must exceed fast"}],
    "indicators": ["sma({fast})", "sma({slow})"],
    "models": []});

enum { P_FAST, P_SLOW };
enum { SIDE_UNKNOWN = 0, SIDE_BELOW = 1, SIDE_ABOVE = 2 };

static uint8_t side;

static int sma_init(const cw_params *p) {
    if (cw_param_int(p, P_FAST) >= cw_param_int(p, P_SLOW)) {
        cw_log(CW_LOG_ERROR, "fast must be shorter than slow");
        return CW_ERR_INIT_FAILED;
    }
    side = SIDE_UNKNOWN;
    return CW_OK;
}

static int sma_on_bar(const cw_bar *bar, cw_signal *out) {
    double fast = cw_indicator(bar, 0), slow = cw_indicator(bar, 1);
    if (cw_is_nan(fast) || cw_is_nan(slow) || fast == slow) return 0;
    uint8_t now = fast > slow ? SIDE_ABOVE : SIDE_BELOW;
    uint8_t before = side;
    side = now;
    if (before == SIDE_BELOW && now == SIDE_ABOVE) {
        *out = cw_buy(1.0);
        return 1;
    }
    if (before == SIDE_ABOVE && now == SIDE_BELOW) {
        *out = cw_sell(1.0);
        return 1;
    }
    return 0;
}

static int32_t sma_snapshot(uint8_t *buf, uint32_t cap) {
    if (cap < 1) return -1;
    buf[0] = side;
    return 1;
}

static int sma_restore(const uint8_t *buf, uint32_t len) {
    if (len != 1 || buf[0] > SIDE_ABOVE) return CW_ERR_RESTORE_REJECTED;
    side = buf[0];
    return CW_OK;
}

CW_EXPORT_STRATEGY(sma_init, sma_on_bar, sma_snapshot, sma_restore)
