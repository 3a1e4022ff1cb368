/*
 * candlewick.h: the C SDK for Candlewick strategy plugins (ABI v1).
 *
 * Header-only, freestanding (no libc): include it, write four functions,
 * name them in CW_EXPORT_STRATEGY, declare the manifest with CW_MANIFEST,
 * and build with Debian's clang and lld:
 *
 *   clang --target=wasm32 -nostdlib -O2 -Wl,--no-entry -Wl,--export-dynamic \
 *         -I sdk/c -o my_plugin.wasm my_plugin.c
 *
 * (`candlewick plugin build DIR` runs exactly that.) The records below are
 * the #[repr(C)] layouts of sdk/ABI.md §3; the static asserts at the bottom
 * keep them equal. Everything lives in static buffers: no allocator.
 *
 *   #include "candlewick.h"
 *
 *   CW_MANIFEST({"abi":1, "name":"up_close", "version":"0.1.0"});
 *
 *   static int up_init(const cw_params *p) { (void)p; return CW_OK; }
 *   static int up_on_bar(const cw_bar *bar, cw_signal *out) {
 *       if (cw_close(bar) <= cw_open(bar)) return 0;
 *       *out = cw_buy(1.0);
 *       return 1;
 *   }
 *   CW_EXPORT_STRATEGY_STATELESS(up_init, up_on_bar)
 *
 * Tunables (define before the include): CW_BATCH_CAPACITY (bars per call,
 * default 64), CW_MAX_VALUES (indicator columns + model outputs per bar,
 * default 16), CW_MAX_PARAMS (default 32), CW_SNAPSHOT_MAX (bytes, default
 * 1024).
 */
#ifndef CANDLEWICK_H
#define CANDLEWICK_H

#include <stdint.h>

#ifndef CW_BATCH_CAPACITY
#define CW_BATCH_CAPACITY 64
#endif
#ifndef CW_MAX_VALUES
#define CW_MAX_VALUES 16
#endif
#ifndef CW_MAX_PARAMS
#define CW_MAX_PARAMS 32
#endif
#ifndef CW_SNAPSHOT_MAX
#define CW_SNAPSHOT_MAX 1024
#endif

#define CW_ABI_VERSION 1u

/* Return codes (sdk/ABI.md §4). */
#define CW_OK 0
#define CW_ERR_BAD_INPUT (-1)
#define CW_ERR_INIT_FAILED (-2)
#define CW_ERR_NOT_INITIALISED (-3)
#define CW_ERR_BATCH_TOO_LARGE (-4)
#define CW_ERR_RESTORE_REJECTED (-5)
#define CW_ERR_NO_SNAPSHOT (-6)

/* Actions of a signal. */
#define CW_HOLD 0u
#define CW_BUY 1u
#define CW_SELL 2u
#define CW_EXIT 3u

/* Log levels of cw_log. */
#define CW_LOG_ERROR 0
#define CW_LOG_WARN 1
#define CW_LOG_INFO 2
#define CW_LOG_DEBUG 3
#define CW_LOG_TRACE 4

/* ---- Records, as the host reads and writes them ---------------------- */

/* Head of the block cw_init receives; n_params doubles follow. */
typedef struct {
    uint32_t abi_version, n_values, n_params, n_models;
} cw_init_header;

/* What cw_io_layout points at. */
typedef struct {
    uint32_t abi_version, bar_stride, input_ptr, input_capacity, output_ptr, output_capacity;
} cw_io_layout_t;

/* The fixed head of a bar record; n_values doubles follow. */
typedef struct {
    int64_t time; /* open time, ms since the Unix epoch, UTC */
    double open, high, low, close, volume;
} cw_bar_header;

/* One output record. */
typedef struct {
    uint32_t bar, action;
    double strength, stop_loss, take_profit;
    uint32_t tag, reserved;
} cw_signal_record;

_Static_assert(sizeof(cw_init_header) == 16, "init header is 16 bytes");
_Static_assert(sizeof(cw_io_layout_t) == 24, "io layout is 24 bytes");
_Static_assert(sizeof(cw_bar_header) == 48, "bar header is 48 bytes");
_Static_assert(sizeof(cw_signal_record) == 40, "signal record is 40 bytes");
_Static_assert(_Alignof(cw_signal_record) == 8, "signal record is 8-aligned");

/* ---- What a strategy sees -------------------------------------------- */

/* The checked parameter values, in manifest order (ints are whole, bools
 * are 0 or 1). */
typedef struct {
    const double *values;
    uint32_t count;
} cw_params;

/* One closed bar and its values: indicator columns, then model outputs.
 * NaN means "not available" (warming up, or no model output). */
typedef struct {
    const cw_bar_header *head;
    const double *values;
    uint32_t index;    /* position in this call's batch */
    uint32_t n_values; /* all values */
    uint32_t n_models; /* the last n_models values are model outputs */
} cw_bar;

/* What a strategy says about a bar. Stops are NaN for none. */
typedef struct {
    uint32_t action;
    double strength; /* finite, in [-1, 1] */
    double stop_loss, take_profit;
    uint32_t tag;
} cw_signal;

#define CW_NAN (__builtin_nan(""))

static inline int cw_is_nan(double v) { return v != v; }

static inline double cw_param(const cw_params *p, uint32_t i) {
    return i < p->count ? p->values[i] : CW_NAN;
}
static inline int64_t cw_param_int(const cw_params *p, uint32_t i) {
    double v = cw_param(p, i);
    return cw_is_nan(v) ? 0 : (int64_t)v;
}

static inline int64_t cw_time(const cw_bar *b) { return b->head->time; }
static inline double cw_open(const cw_bar *b) { return b->head->open; }
static inline double cw_high(const cw_bar *b) { return b->head->high; }
static inline double cw_low(const cw_bar *b) { return b->head->low; }
static inline double cw_close(const cw_bar *b) { return b->head->close; }
static inline double cw_volume(const cw_bar *b) { return b->head->volume; }

/* Indicator column i (NaN while warming up or past the end). */
static inline double cw_indicator(const cw_bar *b, uint32_t i) {
    return i < b->n_values - b->n_models ? b->values[i] : CW_NAN;
}
/* Model output i (NaN when absent). */
static inline double cw_model(const cw_bar *b, uint32_t i) {
    return i < b->n_models ? b->values[b->n_values - b->n_models + i] : CW_NAN;
}

static inline cw_signal cw_signal_of(uint32_t action, double strength) {
    cw_signal s = {action, strength, CW_NAN, CW_NAN, 0};
    return s;
}
static inline cw_signal cw_buy(double strength) { return cw_signal_of(CW_BUY, strength); }
static inline cw_signal cw_sell(double strength) { return cw_signal_of(CW_SELL, strength); }
static inline cw_signal cw_exit(void) { return cw_signal_of(CW_EXIT, 0.0); }

/* Little-endian byte helpers for snapshots (wasm is little-endian). */
static inline void cw_put_f64(uint8_t *at, double v) { __builtin_memcpy(at, &v, 8); }
static inline double cw_get_f64(const uint8_t *at) {
    double v;
    __builtin_memcpy(&v, at, 8);
    return v;
}

/* ---- Host imports ----------------------------------------------------- */

__attribute__((import_module("cw"), import_name("log"))) void cw__import_log(int32_t level, const char *ptr, int32_t len);
__attribute__((import_module("cw"), import_name("metric"))) void cw__import_metric(const char *ptr, int32_t len, double value);
__attribute__((import_module("cw"), import_name("now_ms"))) int64_t cw__import_now_ms(void);

/* One log line from a string literal (an error line is shown to the
 * operator when init fails); cw_log_n for a runtime buffer. No libc, so no
 * strlen: the literal's size is known at compile time. */
#define cw_log(level, literal) cw__import_log((level), (literal), (int32_t)(sizeof(literal) - 1))
static inline void cw_log_n(int32_t level, const char *text, int32_t len) {
    cw__import_log(level, text, len);
}
/* Sets the plugin's gauge named by a string literal. */
#define cw_metric(literal, value) \
    cw__import_metric((literal), (int32_t)(sizeof(literal) - 1), (double)(value))
/* Event time of the current call (the newest bar's open time), ms. */
static inline int64_t cw_now_ms(void) { return cw__import_now_ms(); }

/* ---- The manifest ----------------------------------------------------- */

/* Emits the `cw_manifest` custom section (sdk/ABI.md §2) from the JSON
 * written as it is, no escaping:
 *
 *   CW_MANIFEST({"abi":1, "name":"sma_cross", "version":"0.1.0", "params":[]});
 *
 * The JSON is stringified twice (once into a C literal, once more into an
 * assembler string) and placed with top-level assembly, because clang 14
 * puts a C global's `section(".custom_section.X")` into a data segment,
 * not a custom section. Use once per plugin, at file scope. */
#define CW__STR(...) #__VA_ARGS__
#define CW__XSTR(...) CW__STR(__VA_ARGS__)
#define CW_MANIFEST(...)                                       \
    __asm__(".section .custom_section.cw_manifest,\"\",@\n" \
            ".ascii " CW__XSTR(CW__STR(__VA_ARGS__)) "\n")

/* ---- The exports ------------------------------------------------------ */

#define CW__EXPORT(name) __attribute__((export_name(name)))
#define CW__STRIDE_WORDS (6 + CW_MAX_VALUES)
#define CW__SCRATCH_WORDS                                                              \
    ((2 + CW_MAX_PARAMS) > (CW_SNAPSHOT_MAX + 7) / 8 ? (2 + CW_MAX_PARAMS) \
                                                     : (CW_SNAPSHOT_MAX + 7) / 8)

/* The runtime's state; one per module instance (an instance is one
 * strategy on one stream). */
typedef struct {
    uint64_t scratch[CW__SCRATCH_WORDS];
    uint64_t input[CW_BATCH_CAPACITY * CW__STRIDE_WORDS];
    cw_signal_record output[CW_BATCH_CAPACITY];
    uint8_t snapshot[CW_SNAPSHOT_MAX];
    double params[CW_MAX_PARAMS];
    cw_io_layout_t layout;
    uint32_t n_values, n_models, stride_words, initialised;
} cw__runtime;

#define CW__RUNTIME_AND_CORE_EXPORTS(init_fn, on_bar_fn)                                        \
    static cw__runtime cw__rt;                                                                \
    CW__EXPORT("cw_abi_version") int32_t cw__abi_version(void) { return CW_ABI_VERSION; }    \
    CW__EXPORT("cw_alloc") int32_t cw__alloc(int32_t len) {                                   \
        return len >= 0 && (uint32_t)len <= sizeof cw__rt.scratch                             \
                   ? (int32_t)(uintptr_t)cw__rt.scratch                                       \
                   : 0;                                                                       \
    }                                                                                         \
    CW__EXPORT("cw_init") int32_t cw__init(int32_t ptr, int32_t len) {                        \
        const cw_init_header *h = (const cw_init_header *)(uintptr_t)ptr;                    \
        if ((uintptr_t)ptr != (uintptr_t)cw__rt.scratch || len < 16 ||                       \
            (uint32_t)len > sizeof cw__rt.scratch)                                            \
            return CW_ERR_BAD_INPUT;                                                          \
        if (h->abi_version != CW_ABI_VERSION || h->n_models > h->n_values ||                  \
            h->n_params > CW_MAX_PARAMS || (uint32_t)len != 16 + 8 * h->n_params)             \
            return CW_ERR_BAD_INPUT;                                                          \
        if (h->n_values > CW_MAX_VALUES) {                                                    \
            cw_log(CW_LOG_ERROR, "more values per bar than CW_MAX_VALUES: raise it");       \
            return CW_ERR_BAD_INPUT;                                                          \
        }                                                                                     \
        const double *v = (const double *)(h + 1);                                            \
        for (uint32_t i = 0; i < h->n_params; i++) cw__rt.params[i] = v[i];                   \
        cw_params p = {cw__rt.params, h->n_params};                                           \
        cw__rt.initialised = 0;                                                               \
        int32_t rc = (init_fn)(&p);                                                           \
        if (rc != CW_OK) return rc < 0 ? rc : CW_ERR_INIT_FAILED;                             \
        cw__rt.n_values = h->n_values;                                                        \
        cw__rt.n_models = h->n_models;                                                        \
        cw__rt.stride_words = 6 + h->n_values;                                                \
        cw_io_layout_t l = {CW_ABI_VERSION,                                                   \
                            48 + 8 * h->n_values,                                             \
                            (uint32_t)(uintptr_t)cw__rt.input,                                \
                            CW_BATCH_CAPACITY,                                                \
                            (uint32_t)(uintptr_t)cw__rt.output,                               \
                            CW_BATCH_CAPACITY};                                               \
        cw__rt.layout = l;                                                                    \
        cw__rt.initialised = 1;                                                               \
        return CW_OK;                                                                         \
    }                                                                                         \
    CW__EXPORT("cw_io_layout") int32_t cw__io_layout(void) {                                  \
        return (int32_t)(uintptr_t)&cw__rt.layout;                                            \
    }                                                                                         \
    CW__EXPORT("cw_on_batch") int32_t cw__on_batch(int32_t n) {                               \
        if (!cw__rt.initialised) return CW_ERR_NOT_INITIALISED;                               \
        if (n < 0 || n > CW_BATCH_CAPACITY) return CW_ERR_BATCH_TOO_LARGE;                    \
        int32_t k = 0;                                                                        \
        for (int32_t i = 0; i < n; i++) {                                                     \
            const uint64_t *rec = cw__rt.input + (uint32_t)i * cw__rt.stride_words;           \
            cw_bar bar = {(const cw_bar_header *)rec, (const double *)(rec + 6), (uint32_t)i, \
                          cw__rt.n_values, cw__rt.n_models};                                  \
            cw_signal s;                                                                      \
            if ((on_bar_fn)(&bar, &s)) {                                                      \
                cw_signal_record r = {(uint32_t)i,  s.action, s.strength, s.stop_loss,       \
                                      s.take_profit, s.tag,   0};                             \
                cw__rt.output[k++] = r;                                                       \
            }                                                                                 \
        }                                                                                     \
        return k;                                                                             \
    }

/*
 * Exports a strategy with state carried across restarts and reloads:
 *
 *   int init(const cw_params *p);               CW_OK, or log an error line
 *                                               and return CW_ERR_INIT_FAILED
 *   int on_bar(const cw_bar *b, cw_signal *s);  1 when *s was written, else 0
 *   int32_t snapshot(uint8_t *buf, uint32_t cap);  bytes written (<= cap)
 *   int restore(const uint8_t *buf, uint32_t len); CW_OK, or CW_ERR_RESTORE_REJECTED
 *
 * Bars come oldest first, each exactly once; at most one signal per bar.
 */
#define CW_EXPORT_STRATEGY(init_fn, on_bar_fn, snapshot_fn, restore_fn)                      \
    CW__RUNTIME_AND_CORE_EXPORTS(init_fn, on_bar_fn)                                          \
    CW__EXPORT("cw_snapshot") int64_t cw__snapshot(void) {                                    \
        if (!cw__rt.initialised) return CW_ERR_NOT_INITIALISED;                               \
        int32_t len = (snapshot_fn)(cw__rt.snapshot, CW_SNAPSHOT_MAX);                        \
        if (len < 0 || len > CW_SNAPSHOT_MAX) return CW_ERR_NO_SNAPSHOT;                      \
        return ((int64_t)len << 32) | (int64_t)(uint32_t)(uintptr_t)cw__rt.snapshot;          \
    }                                                                                         \
    CW__EXPORT("cw_restore") int32_t cw__restore(int32_t ptr, int32_t len) {                  \
        if (!cw__rt.initialised) return CW_ERR_NOT_INITIALISED;                               \
        if ((uintptr_t)ptr != (uintptr_t)cw__rt.scratch || len < 0 ||                         \
            (uint32_t)len > sizeof cw__rt.scratch)                                            \
            return CW_ERR_BAD_INPUT;                                                          \
        return (restore_fn)((const uint8_t *)cw__rt.scratch, (uint32_t)len) == CW_OK         \
                   ? CW_OK                                                                    \
                   : CW_ERR_RESTORE_REJECTED;                                                 \
    }

/* Exports a strategy that keeps no state worth carrying (no cw_snapshot,
 * no cw_restore: after a restart it starts fresh). */
#define CW_EXPORT_STRATEGY_STATELESS(init_fn, on_bar_fn) \
    CW__RUNTIME_AND_CORE_EXPORTS(init_fn, on_bar_fn)

#endif /* CANDLEWICK_H */
