// Small formatting helpers, all locale-independent.

export function utc(ms: number): string {
  return new Date(ms).toISOString().slice(0, 16).replace("T", " ");
}

export function num(v: number, digits = 2): string {
  if (!Number.isFinite(v)) return "–";
  const abs = Math.abs(v);
  if (abs >= 1e6) return (v / 1e6).toFixed(1) + "M";
  if (abs >= 1e4) return (v / 1e3).toFixed(1) + "k";
  return v.toFixed(abs >= 100 ? 0 : digits);
}

export function price(v: number): string {
  if (!Number.isFinite(v)) return "–";
  const abs = Math.abs(v);
  return v.toFixed(abs >= 1000 ? 2 : abs >= 1 ? 4 : 6);
}

export function micros(us: number): string {
  if (!Number.isFinite(us) || us <= 0) return "–";
  if (us >= 1e6) return (us / 1e6).toFixed(2) + " s";
  if (us >= 1e3) return (us / 1e3).toFixed(2) + " ms";
  return us.toFixed(0) + " µs";
}

export function ago(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) return "none yet";
  if (seconds < 90) return `${seconds.toFixed(0)} s ago`;
  if (seconds < 5400) return `${(seconds / 60).toFixed(0)} min ago`;
  return `${(seconds / 3600).toFixed(1)} h ago`;
}

/** An element with text; never innerHTML, so engine strings stay text. */
export function el<K extends keyof HTMLElementTagNameMap>(tag: K, text?: string, cls?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}
