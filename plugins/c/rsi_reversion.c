/*
 * rsi_reversion in C: buy when RSI climbs back above the oversold line,
 * sell when it falls back below the overbought line. The same strategy,
 * parameters and manifest as plugins/rsi_reversion (Rust).
 *
 * A signal fires on the bar where RSI crosses back into the middle band.
 * Strength grows with how deep the extreme went, capped at 1. The state
 * (previous RSI and the extreme seen since) is snapshotted.
 */
#include "candlewick.h"

CW_MANIFEST({
    "abi": 1, "name": "rsi_reversion", "version": "0.1.0",
    "description": "Buy when RSI leaves oversold, sell when it leaves overbought.",
    "params": [
        {"name": "period", "type": "int", "default": 14, "min": 2, "max": 500,
         "doc": "RSI period (bars)"},
        {"name": "lower", "type": "float", "default": 30.0, "min": 0.0, "max": 100.0,
         "doc": "Oversold line"},
        {"name": "upper", "type": "float", "default": 70.0, "min": 0.0, "max": 100.0,
         "doc": "Overbought line"}],
    "indicators": ["rsi({period})"],
    "models": []});

enum { P_PERIOD, P_LOWER, P_UPPER };

static double lower, upper;
static double prev;    /* previous RSI, NaN before the first */
static double extreme; /* most extreme RSI since it left the middle band, or NaN */

/* Rust's f64::clamp: NaN stays NaN. */
static double clamp01(double v) {
    if (v < 0.0) v = 0.0;
    if (v > 1.0) v = 1.0;
    return v;
}

static int rsi_init(const cw_params *p) {
    lower = cw_param(p, P_LOWER);
    upper = cw_param(p, P_UPPER);
    if (!(lower < upper)) {
        cw_log(CW_LOG_ERROR, "lower must be below upper");
        return CW_ERR_INIT_FAILED;
    }
    prev = CW_NAN;
    extreme = CW_NAN;
    return CW_OK;
}

/* The depth of the excursion, 0 when there was none (NaN). */
static double depth_or_zero(double d) { return d > 0.0 ? d : 0.0; }

static int rsi_on_bar(const cw_bar *bar, cw_signal *out) {
    double rsi = cw_indicator(bar, 0);
    if (cw_is_nan(rsi)) return 0;
    double before = prev;
    prev = rsi;
    int fired = 0;
    /* The extreme is that of the excursion before this bar. */
    if (!cw_is_nan(before) && before < lower && rsi >= lower) {
        double depth = depth_or_zero((lower - extreme) / (lower > 1.0 ? lower : 1.0));
        extreme = CW_NAN;
        *out = cw_buy(clamp01(0.5 + depth));
        fired = 1;
    } else if (!cw_is_nan(before) && before > upper && rsi <= upper) {
        double room = 100.0 - upper;
        double depth = depth_or_zero((extreme - upper) / (room > 1.0 ? room : 1.0));
        extreme = CW_NAN;
        *out = cw_sell(clamp01(0.5 + depth));
        fired = 1;
    }
    /* Then this bar joins the current excursion. */
    if (rsi < lower) {
        extreme = cw_is_nan(extreme) || rsi < extreme ? rsi : extreme;
    } else if (rsi > upper) {
        extreme = cw_is_nan(extreme) || rsi > extreme ? rsi : extreme;
    }
    return fired;
}

static int32_t rsi_snapshot(uint8_t *buf, uint32_t cap) {
    if (cap < 16) return -1;
    cw_put_f64(buf, prev);
    cw_put_f64(buf + 8, extreme);
    return 16;
}

static int rsi_restore(const uint8_t *buf, uint32_t len) {
    if (len != 16) return CW_ERR_RESTORE_REJECTED;
    prev = cw_get_f64(buf);
    extreme = cw_get_f64(buf + 8);
    return CW_OK;
}

CW_EXPORT_STRATEGY(rsi_init, rsi_on_bar, rsi_snapshot, rsi_restore)
