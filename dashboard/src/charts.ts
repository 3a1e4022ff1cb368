// The charts: one candlestick chart (the selected stream, with signal
// markers) and the engine's two small time series.

import {
  CandlestickSeries, ColorType, LineSeries, createChart, createSeriesMarkers,
  type IChartApi, type ISeriesApi, type Logical, type ISeriesMarkersPluginApi, type SeriesMarker, type Time, type UTCTimestamp,
} from "lightweight-charts";
import type { CandleRow, Sample, SignalRow } from "./api";
import { price, utc } from "./format";

const MAX_BARS = 5000;

function css(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

function theme() {
  return {
    layout: { background: { type: ColorType.Solid, color: css("--card") }, textColor: css("--muted") },
    grid: { vertLines: { color: css("--line") }, horzLines: { color: css("--line") } },
  };
}

const sec = (ms: number) => Math.floor(ms / 1000) as UTCTimestamp;

/** Re-colours every chart when the system switches light/dark. */
const charts: IChartApi[] = [];
matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => {
  for (const c of charts) c.applyOptions(theme());
});

function make(container: HTMLElement, timeVisible: boolean): IChartApi {
  const chart = createChart(container, {
    autoSize: true,
    ...theme(),
    timeScale: { timeVisible, secondsVisible: false },
    rightPriceScale: { borderVisible: false },
  });
  charts.push(chart);
  return chart;
}

/** The candlestick chart of one stream at a time. */
export class CandleChart {
  private chart: IChartApi;
  private series: ISeriesApi<"Candlestick">;
  private markers: ISeriesMarkersPluginApi<Time>;
  private signals: SignalRow[] = [];
  private first = Infinity;
  private last = -Infinity;
  private candles = 0;
  /** A signal arrived before its candle: draw the markers again when it comes. */
  private stale = false;

  constructor(private container: HTMLElement, private tip: HTMLElement) {
    this.chart = make(container, true);
    this.series = this.chart.addSeries(CandlestickSeries, {
      upColor: css("--up"), downColor: css("--down"), borderVisible: false,
      wickUpColor: css("--up"), wickDownColor: css("--down"),
    });
    this.markers = createSeriesMarkers(this.series, []);
    this.chart.subscribeCrosshairMove((p) => this.hover(p.time as number | undefined, p.point));
    container.addEventListener("keydown", (e) => this.key(e));
  }

  /** Replaces everything with a stream's history. */
  load(candles: CandleRow[], signals: SignalRow[]): void {
    const rows = candles.slice(-MAX_BARS);
    this.series.setData(rows.map((c) => ({ time: sec(c.time), open: c.open, high: c.high, low: c.low, close: c.close })));
    this.first = rows.length ? rows[0].time : Infinity;
    this.last = rows.length ? rows[rows.length - 1].time : -Infinity;
    this.candles = rows.length;
    this.signals = signals.slice();
    this.drawMarkers();
    this.chart.timeScale().scrollToRealTime();
    this.describe();
    if (rows.length && !performance.getEntriesByName("cw-first-candles").length) performance.mark("cw-first-candles");
  }

  /** A closed candle from the feed; older or repeated ones are ignored. */
  candle(c: CandleRow): void {
    if (c.time <= this.last) return;
    this.series.update({ time: sec(c.time), open: c.open, high: c.high, low: c.low, close: c.close });
    this.last = c.time;
    if (!Number.isFinite(this.first)) this.first = c.time;
    this.candles += 1;
    if (this.stale) this.drawMarkers();
    this.describe();
  }

  signal(s: SignalRow): void {
    if (this.signals.some((x) => x.id === s.id)) return;
    this.signals.push(s);
    if (this.signals.length > MAX_BARS) this.signals.shift();
    this.drawMarkers();
    this.describe();
  }

  private drawMarkers(): void {
    // Only signals on a drawn candle get a marker (the chart has no bar
    // to put the others on); a later candle redraws them.
    this.stale = this.signals.some((s) => s.time > this.last);
    const ms: SeriesMarker<Time>[] = this.signals
      .filter((s) => s.action !== "hold" && s.time >= this.first && s.time <= this.last)
      .sort((a, b) => a.time - b.time)
      .map((s) => ({
        id: s.id,
        time: sec(s.time),
        position: s.action === "buy" ? "belowBar" : "aboveBar",
        shape: s.action === "buy" ? "arrowUp" : s.action === "sell" ? "arrowDown" : "circle",
        color: css(s.action === "buy" ? "--up" : s.action === "sell" ? "--down" : "--exit"),
      }));
    this.markers.setMarkers(ms);
    this.container.dataset.markers = String(ms.length);
    this.container.dataset.markerIds = ms.slice(-200).map((m) => m.id).join(" ");
  }

  private describe(): void {
    this.container.dataset.candles = String(this.candles);
    const when = Number.isFinite(this.last) ? utc(this.last) : "no candles yet";
    this.container.setAttribute("aria-label",
      `Candlestick chart, ${this.candles} candles, last ${when} UTC, ${this.signals.length} signals`);
  }

  private hover(time: number | undefined, point: { x: number; y: number } | undefined): void {
    const here = time === undefined ? [] : this.signals.filter((s) => sec(s.time) === time);
    if (!here.length || !point) {
      this.tip.hidden = true;
      return;
    }
    this.tip.textContent = here
      .map((s) => `${s.strategy}: ${s.action} at ${price(s.price)} (strength ${s.strength.toFixed(2)}) · ${utc(s.time)} UTC`)
      .join("\n");
    const box = this.container.getBoundingClientRect();
    this.tip.style.left = `${Math.min(box.left + point.x + 12, innerWidth - 260)}px`;
    this.tip.style.top = `${box.top + point.y + 12}px`;
    this.tip.hidden = false;
  }

  /** Keyboard: arrows scroll, + and - zoom, Home/End jump. */
  private key(e: KeyboardEvent): void {
    const ts = this.chart.timeScale();
    const range = ts.getVisibleLogicalRange();
    if (!range) return;
    const width = range.to - range.from;
    const step = Math.max(1, Math.round(width / 10));
    let from: number = range.from, to: number = range.to;
    switch (e.key) {
      case "ArrowLeft": from -= step; to -= step; break;
      case "ArrowRight": from += step; to += step; break;
      case "+": case "=": from += width / 4; break;
      case "-": case "_": from -= width / 2; break;
      case "End": ts.scrollToRealTime(); e.preventDefault(); return;
      case "Home": ts.fitContent(); e.preventDefault(); return;
      default: return;
    }
    e.preventDefault();
    ts.setVisibleLogicalRange({ from: from as Logical, to: to as Logical });
  }
}

/** A few line series over wall-clock time. */
export class Lines {
  private chart: IChartApi;
  private series: ISeriesApi<"Line">[];
  private last = 0;

  constructor(container: HTMLElement, private pick: ((s: Sample) => number)[], colors: string[], titles: string[]) {
    this.chart = make(container, true);
    this.chart.applyOptions({ timeScale: { secondsVisible: true }, handleScroll: false, handleScale: false });
    this.series = pick.map((_, i) =>
      this.chart.addSeries(LineSeries, { color: css(colors[i]), lineWidth: 2, title: titles[i], priceLineVisible: false }));
  }

  clear(): void {
    for (const s of this.series) s.setData([]);
    this.last = 0;
  }

  push(samples: Sample[]): void {
    for (const s of samples) {
      const t = sec(s.t_ms);
      if (t <= this.last) continue;
      this.last = t;
      this.pick.forEach((f, i) => this.series[i].update({ time: t, value: f(s) }));
    }
  }
}
