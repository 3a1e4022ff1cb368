// The ABI v1 exports (../ABI.md §1, §4). A plugin's entry file re-exports
// them: `export * from "<sdk>/assembly/exports";`.
import {
  ABI_VERSION, BAR_HEADER_SIZE, BATCH_CAPACITY, ERR_BAD_INPUT, ERR_BATCH_TOO_LARGE,
  ERR_INIT_FAILED, ERR_NOT_INITIALISED, ERR_NO_SNAPSHOT, ERR_RESTORE_REJECTED, LOG_ERROR,
  MAX_PARAMS, MAX_VALUES, OK, Params, SIGNAL_RECORD_SIZE, SNAPSHOT_MAX, input, layout, log,
  output, params, scratch, scratchBytes, snap, state,
} from "./index";

export function cw_abi_version(): i32 {
  return ABI_VERSION;
}

export function cw_alloc(len: i32): i32 {
  return len >= 0 && len <= scratchBytes ? <i32>scratch : 0;
}

export function cw_init(ptr: i32, len: i32): i32 {
  if (<usize>ptr != scratch || len < 16 || len > scratchBytes) return ERR_BAD_INPUT;
  const version = load<u32>(scratch);
  const nValues = load<u32>(scratch, 4);
  const nParams = load<u32>(scratch, 8);
  const nModels = load<u32>(scratch, 12);
  if (version != <u32>ABI_VERSION || nModels > nValues || nParams > <u32>MAX_PARAMS
    || <u32>len != 16 + 8 * nParams) return ERR_BAD_INPUT;
  if (nValues > <u32>MAX_VALUES) {
    log(LOG_ERROR, "more values per bar than MAX_VALUES: raise it");
    return ERR_BAD_INPUT;
  }
  memory.copy(params, scratch + 16, 8 * nParams);
  state.strategy = null;
  const factory = state.factory;
  if (factory == null) {
    log(LOG_ERROR, "no strategy registered: call register() in the entry file");
    return ERR_INIT_FAILED;
  }
  const strategy = factory(new Params(params, <i32>nParams));
  if (strategy == null) return ERR_INIT_FAILED;
  state.strategy = strategy;
  state.stride = BAR_HEADER_SIZE + 8 * <i32>nValues;
  state.bar.nValues = <i32>nValues;
  state.bar.nModels = <i32>nModels;
  store<u32>(layout, ABI_VERSION);
  store<u32>(layout, state.stride, 4);
  store<u32>(layout, <u32>input, 8);
  store<u32>(layout, BATCH_CAPACITY, 12);
  store<u32>(layout, <u32>output, 16);
  store<u32>(layout, BATCH_CAPACITY, 20);
  return OK;
}

export function cw_io_layout(): i32 {
  return <i32>layout;
}

export function cw_on_batch(n: i32): i32 {
  const strategy = state.strategy;
  if (strategy == null) return ERR_NOT_INITIALISED;
  if (n < 0 || n > BATCH_CAPACITY) return ERR_BATCH_TOO_LARGE;
  const bar = state.bar;
  const sig = state.signal;
  const stride = <usize>state.stride;
  let k = 0;
  for (let i = 0; i < n; i++) {
    bar.ptr = input + <usize>i * stride;
    bar.index = i;
    if (strategy.onBar(bar, sig)) {
      const at = output + <usize>k * SIGNAL_RECORD_SIZE;
      store<u32>(at, i);
      store<u32>(at, sig.action, 4);
      store<f64>(at, sig.strength, 8);
      store<f64>(at, sig.stopLoss, 16);
      store<f64>(at, sig.takeProfit, 24);
      store<u32>(at, sig.tag, 32);
      store<u32>(at, 0, 36);
      k++;
    }
  }
  return k;
}

export function cw_snapshot(): i64 {
  const strategy = state.strategy;
  if (strategy == null) return ERR_NOT_INITIALISED;
  const len = strategy.snapshot(snap, SNAPSHOT_MAX);
  if (len < 0 || len > SNAPSHOT_MAX) return ERR_NO_SNAPSHOT;
  return (<i64>len << 32) | <i64>snap;
}

export function cw_restore(ptr: i32, len: i32): i32 {
  const strategy = state.strategy;
  if (strategy == null) return ERR_NOT_INITIALISED;
  if (<usize>ptr != scratch || len < 0 || len > scratchBytes) return ERR_BAD_INPUT;
  return strategy.restore(scratch, len) ? OK : ERR_RESTORE_REJECTED;
}
