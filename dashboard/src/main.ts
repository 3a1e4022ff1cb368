// The Candlewick dashboard: asks for the feed token, then shows the
// engine's streams, strategies and health, live.

import { type Frame, type SignalRow, type Status, Unauthorized, history, openFeed, status } from "./api";
import { CandleChart, Lines } from "./charts";
import { ago, el, micros, num, price, utc } from "./format";

const KEY = "candlewick.token";
const POLL_MS = 2000;
const SIGNAL_ROWS = 12;

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

/** The token: taken once from `#token=...` (then removed from the address
 * bar), else from this tab's sessionStorage. Never from the query string. */
function initialToken(): string | null {
  const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (m) {
    const t = decodeURIComponent(m[1]);
    sessionStorage.setItem(KEY, t);
    history_replace();
    return t;
  }
  return sessionStorage.getItem(KEY);
}

function history_replace(): void {
  window.history.replaceState(null, "", location.pathname + location.search);
}

/** The charts, made once; a board fills them, a failed login clears them. */
const views = {
  chart: new CandleChart($("chart"), $("tip")),
  rates: new Lines($("rates"), [(s) => s.candles_per_s, (s) => s.signals_per_s], ["--accent", "--up"], ["candles/s", "signals/s"]),
  latency: new Lines($("latency"), [(s) => s.p50_us, (s) => s.p99_us, (s) => s.p999_us], ["--up", "--accent", "--down"], ["p50", "p99", "p99.9"]),
  clear(): void {
    this.chart.load([], []);
    this.rates.clear();
    this.latency.clear();
    for (const id of ["signals", "strategy-table"]) $(id).querySelector("tbody")!.replaceChildren();
    $("kpis").replaceChildren();
    $("tasks").replaceChildren();
    $("stream").replaceChildren();
  },
};

class Board {
  private chart = views.chart;
  private rates = views.rates;
  private latency = views.latency;
  private stream = ""; // "SYMBOL interval" shown
  private since = 0;
  private ws: WebSocket | null = null;
  private pending: Frame[] | null = null; // feed frames held while history loads
  private signals: SignalRow[] = [];
  private timer = 0;
  private stopped = false;
  private retry = 500;

  constructor(private token: string) {}

  /** First status: a 401 here means a wrong token, and nothing is shown. */
  async start(): Promise<void> {
    const s = await status(this.token, 0);
    $("login").hidden = true;
    $("board").hidden = false;
    $("nav").hidden = false;
    $("logout").hidden = false;
    this.render(s);
    this.connect();
    this.timer = window.setInterval(() => void this.poll(), POLL_MS);
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    this.ws?.close();
  }

  private async poll(): Promise<void> {
    try {
      this.render(await status(this.token, this.since));
    } catch (e) {
      if (e instanceof Unauthorized) return fail(`The engine no longer accepts this token (${e.message}).`);
      setConn(false, "engine unreachable");
    }
  }

  private render(s: Status): void {
    if (s.samples.length) this.since = s.samples[s.samples.length - 1].t_ms;
    this.streams(s);
    this.strategies(s);
    this.engine(s);
    this.rates.push(s.samples);
    this.latency.push(s.samples);
  }

  private streams(s: Status): void {
    const select = $("stream") as HTMLSelectElement;
    const names = s.streams.map((x) => `${x.symbol} ${x.interval}`);
    const have = Array.from(select.options).map((o) => o.value);
    if (names.join("|") !== have.join("|")) {
      select.replaceChildren(...names.map((n) => { const o = el("option", n); o.value = n; return o; }));
      if (names.includes(this.stream)) select.value = this.stream;
    }
    if (!this.stream && names.length) void this.show(names[0]);
  }

  /** Loads a stream's history, then applies the feed frames that came meanwhile. */
  async show(name: string): Promise<void> {
    this.stream = name;
    ($("stream") as HTMLSelectElement).value = name;
    const [symbol, interval] = name.split(" ");
    this.pending = [];
    let h;
    try {
      h = await history(this.token, symbol);
    } catch (e) {
      this.pending = null;
      if (e instanceof Unauthorized) return fail(`The engine no longer accepts this token (${e.message}).`);
      setConn(false, `cannot load ${name}: ${(e as Error).message}`);
      return;
    }
    const st = h.streams.find((x) => x.interval === interval);
    this.chart.load(st?.candles ?? [], st?.signals ?? []);
    this.signals = (st?.signals ?? []).slice(-SIGNAL_ROWS);
    const held = this.pending;
    this.pending = null;
    for (const f of held) this.frame(f);
    this.signalTable();
  }

  private connect(): void {
    if (this.stopped) return;
    const ws = openFeed(this.token);
    this.ws = ws;
    ws.addEventListener("open", () => { setConn(true, "live"); this.retry = 500; });
    ws.addEventListener("message", (e) => {
      try { this.frame(JSON.parse(String(e.data)) as Frame); } catch { /* not ours */ }
    });
    ws.addEventListener("close", () => {
      if (this.stopped) return;
      setConn(false, "feed closed, reconnecting");
      setTimeout(() => this.connect(), this.retry);
      this.retry = Math.min(this.retry * 2, 15000);
    });
  }

  private frame(f: Frame): void {
    if (this.pending) { this.pending.push(f); return; }
    const [symbol, interval] = this.stream.split(" ");
    if (f.type === "candle" && f.symbol === symbol && f.interval === interval) {
      this.chart.candle(f);
    } else if (f.type === "signal" && f.symbol === symbol && f.interval === interval) {
      this.chart.signal(f);
      if (!this.signals.some((x) => x.id === f.id)) {
        this.signals.push(f);
        if (this.signals.length > SIGNAL_ROWS) this.signals.shift();
        this.signalTable();
      }
    } else if (f.type === "error" && f.code === "lagged") {
      setConn(true, `live (missed ${f.dropped ?? "some"} frames)`);
    }
  }

  private signalTable(): void {
    const rows = this.signals.slice().reverse().map((s) => {
      const tr = el("tr");
      tr.dataset.signalId = s.id;
      tr.append(el("td", utc(s.time)), el("td", s.strategy), el("td", s.action, s.action), el("td", price(s.price)), el("td", s.strength.toFixed(2)));
      return tr;
    });
    if (!rows.length) {
      const tr = el("tr");
      const td = el("td", "No signal on this stream yet.");
      td.colSpan = 5;
      tr.append(td);
      rows.push(tr);
    }
    $("signals").querySelector("tbody")!.replaceChildren(...rows);
  }

  private strategies(s: Status): void {
    const rows = s.strategies.map((x) => {
      const tr = el("tr");
      tr.dataset.strategy = x.name;
      tr.dataset.state = x.state;
      const state = el("td");
      const label = x.state === "quarantined"
        ? `Quarantined${x.streams_quarantined > 1 ? ` (${x.streams_quarantined} streams)` : ""}`
        : "Running";
      state.append(el("span", label, `badge ${x.state}`));
      const last = x.last_signal ? `${x.last_signal.action} ${x.last_signal.symbol} ${utc(x.last_signal.time)}` : "–";
      const cause = !x.cause ? "–" : x.kind && !x.cause.startsWith(x.kind) ? `${x.kind}: ${x.cause}` : x.cause;
      tr.append(el("th", x.name), state, el("td", String(x.signals_today)), el("td", String(x.signals_total)),
        el("td", last), el("td", String(x.quarantines)), el("td", cause, "cause"), el("td", String(x.restarts)),
        el("td", x.reload_failures ? `${x.reloads} (${x.reload_failures} refused)` : String(x.reloads)));
      tr.firstElementChild!.setAttribute("scope", "row");
      return tr;
    });
    $("strategy-table").querySelector("tbody")!.replaceChildren(...rows);
  }

  private engine(s: Status): void {
    const e = s.engine;
    const source = Object.entries(e.tasks).filter(([k]) => k === "source" || k.startsWith("binance"));
    const sourceState = source.length ? source.map(([, v]) => v.state).join(", ") : "–";
    const kpis: [string, string][] = [
      ["Candles/s", num(e.candles_per_s, 1)],
      ["Signals/s", num(e.signals_per_s, 1)],
      ["p50 ingest→emit", micros(e.latency_us.p50)],
      ["p99", micros(e.latency_us.p99)],
      ["p99.9", micros(e.latency_us.p999)],
      ["Queued", e.queue_depths.join(" / ") || "0"],
      ["Feed clients", String(e.feed_clients)],
      ["Lag drops", String(e.feed_lag_dropped)],
      ["Candles applied", num(e.candles_applied, 0)],
      ["Signals", num(e.signals_emitted, 0)],
      ["Quarantines", String(e.quarantines)],
      ["Last checkpoint", ago(e.checkpoint_age_s)],
      ["Source", sourceState],
      ["Health", s.healthy ? "ok" : "degraded"],
    ];
    $("kpis").replaceChildren(...kpis.map(([k, v]) => {
      const d = el("div");
      d.append(el("dt", k), el("dd", v));
      return d;
    }));
    $("tasks").replaceChildren(...Object.entries(e.tasks).map(([name, t]) => {
      const why = t.state === "restarting" ? `: ${t.last_error}` : t.state === "failed" ? `: ${t.error}` : "";
      return el("li", `${name}: ${t.state}${why}`);
    }));
  }
}

function setConn(live: boolean, text: string): void {
  const c = $("conn");
  c.textContent = text;
  c.className = `conn ${live ? "live" : "down"}`;
}

let board: Board | null = null;

/** Back to the token form with a message; no data stays on screen. */
function fail(message: string): void {
  board?.stop();
  board = null;
  views.clear();
  sessionStorage.removeItem(KEY);
  $("board").hidden = true;
  $("nav").hidden = true;
  $("logout").hidden = true;
  $("login").hidden = false;
  const err = $("error");
  err.textContent = message;
  err.hidden = false;
  setConn(false, "not connected");
  $("token").focus();
}

async function connect(token: string): Promise<void> {
  $("error").hidden = true;
  const b = new Board(token);
  try {
    await b.start();
    board = b;
    document.body.dataset.ready = "1";
    performance.mark("cw-connected");
  } catch (e) {
    b.stop();
    if (e instanceof Unauthorized) fail(`The engine refused this token (${e.message}). Check feed.tokens.`);
    else fail(`Cannot reach the engine: ${(e as Error).message}`);
  }
}

$("login").addEventListener("submit", (e) => {
  e.preventDefault();
  const input = $("token") as HTMLInputElement;
  const t = input.value.trim();
  input.value = "";
  if (!t) return;
  sessionStorage.setItem(KEY, t);
  void connect(t);
});

$("stream").addEventListener("change", () => void board?.show(($("stream") as HTMLSelectElement).value));

$("logout").addEventListener("click", () => {
  fail("Token forgotten. Enter a token to connect again.");
  $("error").hidden = true;
});

const t = initialToken();
if (t) void connect(t);
else $("token").focus();
