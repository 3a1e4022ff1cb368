// What the engine serves the page: /v1/status, /v1/history and the feed.

export interface CandleRow { time: number; open: number; high: number; low: number; close: number; volume: number }

export interface SignalRow {
  id: string; strategy: string; symbol: string; interval: string;
  time: number; action: "buy" | "sell" | "exit" | "hold"; strength: number; price: number; emitted_at_us: number;
}

export interface StreamHistory { symbol: string; interval: string; candles: CandleRow[]; signals: SignalRow[] }

export interface StrategyStatus {
  name: string; state: "running" | "quarantined"; signals_today: number; signals_total: number;
  last_signal: SignalRow | null; quarantines: number; streams_quarantined: number;
  cause: string | null; kind: string | null; restarts: number; reloads: number; reload_failures: number;
}

export interface Sample {
  t_ms: number; candles_per_s: number; signals_per_s: number;
  p50_us: number; p99_us: number; p999_us: number; queued: number; feed_clients: number; lag_dropped: number;
}

export type TaskState =
  | { state: "running" } | { state: "finished" }
  | { state: "restarting"; failures: number; last_error: string }
  | { state: "failed"; error: string };

export interface Status {
  now_ms: number; healthy: boolean;
  strategies: StrategyStatus[];
  streams: { symbol: string; interval: string; candles: number; last_time: number | null }[];
  engine: {
    candles_applied: number; signals_emitted: number; candles_per_s: number; signals_per_s: number;
    latency_us: { count: number; p50: number; p99: number; p999: number; max: number };
    queue_depths: number[]; feed_clients: number; feed_lag_dropped: number; feed_refused: number;
    quarantines: number; checkpoints: number; checkpoint_age_s: number | null;
    tasks: Record<string, TaskState>;
  };
  samples: Sample[];
}

/** The engine said no to the token (401): the page shows it and no data. */
export class Unauthorized extends Error {}

async function getJson<T>(path: string, token: string): Promise<T> {
  const r = await fetch(path, { headers: { Authorization: `Bearer ${token}` }, cache: "no-store" });
  if (r.status === 401) {
    let why = "unknown token";
    try { why = ((await r.json()) as { error?: string }).error ?? why; } catch { /* keep the default */ }
    throw new Unauthorized(why);
  }
  if (!r.ok) {
    let why = `${r.status} ${r.statusText}`;
    try { why = ((await r.json()) as { error?: string }).error ?? why; } catch { /* keep the status */ }
    throw new Error(`${path}: ${why}`);
  }
  return (await r.json()) as T;
}

export const status = (token: string, since: number) => getJson<Status>(`/v1/status?since=${since}`, token);

export const history = (token: string, symbol: string) =>
  getJson<{ symbol: string; streams: StreamHistory[] }>(`/v1/history?symbol=${encodeURIComponent(symbol)}`, token);

/** A feed frame the page uses. */
export type Frame =
  | ({ type: "candle"; seq: number; symbol: string; interval: string } & CandleRow)
  | ({ type: "signal"; seq: number } & SignalRow)
  | { type: "error"; code: string; dropped?: number; message?: string }
  | { type: "pong" | "prediction" };

/**
 * Opens the feed. A browser cannot set an Authorization header on a
 * WebSocket, so the token goes as the feed's `?token=` parameter to the
 * same origin (the engine logs no request URL).
 */
export function openFeed(token: string): WebSocket {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${scheme}//${location.host}/v1/feed?token=${encodeURIComponent(token)}`);
  ws.addEventListener("open", () => {
    ws.send(JSON.stringify({ op: "subscribe", symbols: ["*"], strategies: ["*"], candles: true }));
  });
  return ws;
}
