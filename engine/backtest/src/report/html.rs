//! `report.html`: one file, no script, no network.

use std::fmt::Write;

use candlewick_market::time::format_ms;

use super::svg::{self, Frame, Points, WIDTH};
use super::Report;
use crate::trade::{Side, Trade};

/// Trade markers drawn on the price chart at most; beyond, the chart says
/// how many were left out (the CSV has them all).
const MAX_MARKERS: usize = 2_000;

/// The whole report as one HTML document.
pub fn render_html(report: &Report<'_>) -> String {
    let r = report.result;
    let mut s = String::with_capacity(256 * 1024);
    let _ = write!(
        s,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Backtest: {} on {}</title>\
         <style>body{{font:14px system-ui,sans-serif;max-width:1000px;margin:2em auto;color:#222}}\
         table{{border-collapse:collapse}}td{{padding:2px 10px;border-bottom:1px solid #eee}}\
         td.v{{text-align:right;font-variant-numeric:tabular-nums}}code{{font-size:12px}}h2{{margin-top:1.5em}}</style>\
         </head><body>",
        esc(report.strategy_label),
        esc(report.data_label)
    );
    let _ = write!(
        s,
        "<h1>Backtest: {} on {}</h1><p>Fingerprint <code>{}</code><br>Data sha256 <code>{}</code><br>Strategy <code>{}</code><br>Parameters: {}</p>",
        esc(report.strategy_label),
        esc(report.data_label),
        esc(report.fingerprint),
        esc(&report.inputs.data_sha256),
        esc(&report.inputs.strategy),
        esc(&params(report)),
    );
    s.push_str("<h2>Assumptions</h2><ul>");
    for a in super::assumptions(r) {
        let _ = write!(s, "<li>{}</li>", esc(&a));
    }
    s.push_str("</ul>");
    s.push_str("<h2>Equity and drawdown</h2>");
    s.push_str(&equity_chart(r));
    s.push_str("<h2>Price and trades</h2>");
    s.push_str(&price_chart(r.curve.close(), &r.trades));
    s.push_str("<h2>Statistics</h2>");
    s.push_str(&stats_table(report));
    s.push_str("</body></html>\n");
    s
}

fn params(report: &Report<'_>) -> String {
    if report.inputs.params.is_empty() {
        return "defaults".to_owned();
    }
    report
        .inputs
        .params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn equity_chart(r: &crate::RunResult) -> String {
    let n = r.curve.len();
    let equity = Points::of(n, r.curve.equity().iter().copied());
    let dd = Points::of(n, r.curve.drawdown_iter().map(|d| -d * 100.0));
    let ef = Frame::fit(&equity, 260.0);
    let mut s = svg::open(&ef, "equity", &|v| format!("{v:.0}"));
    s.push_str(&svg::line(&ef, &equity, "#1f5fbf"));
    s.push_str(&time_labels(r.curve.time(), &ef));
    s.push_str("</svg>");
    let mut df = Frame::fit(&dd, 140.0);
    df.hi = 0.0;
    s.push_str(&svg::open(&df, "drawdown", &|v| format!("{v:.1}%")));
    s.push_str(&svg::area_from_top(&df, &dd, "#c0392b"));
    s.push_str("</svg>");
    s
}

fn price_chart(close: &[f64], trades: &[Trade]) -> String {
    let points = Points::of(close.len(), close.iter().copied());
    let f = Frame::fit(&points, 320.0);
    let mut s = svg::open(&f, "price", &|v| format!("{v:.5}"));
    s.push_str(&svg::line(&f, &points, "#444"));
    for t in trades.iter().take(MAX_MARKERS) {
        let (xe, ye) = (f.x(t.entry_bar), f.y(t.entry_price));
        let (xx, yx) = (f.x(t.exit_bar), f.y(t.exit_price));
        let (color, tri) = match t.side {
            Side::Long => (
                "#1e8449",
                format!(
                    "{xe:.1},{:.1} {:.1},{:.1} {:.1},{:.1}",
                    ye - 5.0,
                    xe - 4.0,
                    ye + 3.0,
                    xe + 4.0,
                    ye + 3.0
                ),
            ),
            Side::Short => (
                "#c0392b",
                format!(
                    "{xe:.1},{:.1} {:.1},{:.1} {:.1},{:.1}",
                    ye + 5.0,
                    xe - 4.0,
                    ye - 3.0,
                    xe + 4.0,
                    ye - 3.0
                ),
            ),
        };
        let _ = write!(
            s,
            r##"<polygon points="{tri}" fill="{color}"><title>{} entry bar {} at {}</title></polygon><line x1="{xe:.1}" y1="{ye:.1}" x2="{xx:.1}" y2="{yx:.1}" stroke="{color}" stroke-dasharray="2,2" stroke-width="0.8"/><circle cx="{xx:.1}" cy="{yx:.1}" r="2.5" fill="none" stroke="{color}"><title>exit bar {} at {} ({})</title></circle>"##,
            if t.side == Side::Long {
                "long"
            } else {
                "short"
            },
            t.entry_bar,
            t.entry_price,
            t.exit_bar,
            t.exit_price,
            t.exit_reason.as_str()
        );
    }
    if trades.len() > MAX_MARKERS {
        let _ = write!(
            s,
            r##"<text x="{x}" y="12" font-size="11" text-anchor="end">first {MAX_MARKERS} of {} trades marked</text>"##,
            trades.len(),
            x = WIDTH - 12.0
        );
    }
    s.push_str("</svg>");
    s
}

fn time_labels(time: &[i64], f: &Frame) -> String {
    let mut s = String::new();
    if time.is_empty() {
        return s;
    }
    for k in 0..=4 {
        let i = (time.len() - 1) * k / 4;
        let anchor = match k {
            0 => "start",
            4 => "end",
            _ => "middle",
        };
        let _ = write!(
            s,
            r##"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="{anchor}" fill="#555">{}</text>"##,
            f.x(i),
            f.height - 2.0,
            &format_ms(time[i])[..10]
        );
    }
    s
}

fn stats_table(report: &Report<'_>) -> String {
    let mut s = String::from("<table>");
    for (name, value) in super::table::rows(report) {
        let _ = write!(
            s,
            "<tr><td>{}</td><td class=\"v\">{}</td></tr>",
            esc(&name),
            esc(&value)
        );
    }
    s.push_str("</table>");
    s
}

/// Escapes text for HTML content and attribute values.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use candlewick_market::Candle;

    use crate::fingerprint::Inputs;
    use crate::result::{finish, Indicators};
    use crate::{Broker, BrokerConfig, RunOptions, Signal};

    /// A million bars make a report of a few hundred kilobytes, and the
    /// one bar that spikes is still drawn (each pixel column keeps its
    /// minimum and maximum).
    #[test]
    fn a_million_bars_make_a_small_report_that_shows_a_spike() {
        let n = 1_000_000;
        let bars = (0..n).map(|i| {
            let mut p = 100.0 + (f64::from(i) / 700.0).sin() * 5.0;
            if i == 654_321 {
                p = 170.0;
            }
            Candle {
                open_time: 1_600_000_000_000 + i64::from(i) * 60_000,
                open: p,
                high: p + 0.01,
                low: p - 0.01,
                close: p,
                volume: 1.0,
            }
        });
        // The broker alone, long and short by turns: the report needs a
        // curve and trades, not a strategy.
        let mut broker = Broker::new(BrokerConfig::new()).unwrap();
        for (i, bar) in bars.enumerate() {
            broker.on_bar(&bar);
            match i % 20_000 {
                0 => broker.submit(Signal::buy()),
                10_000 => broker.submit(Signal::sell()),
                _ => {}
            }
        }
        let none = Indicators::for_spec("").unwrap();
        let result = finish(broker.finish(), &none, n as usize, &RunOptions::default()).unwrap();
        assert!(result.trades.len() > 90, "{} trades", result.trades.len());
        let inputs = Inputs {
            data_sha256: "0".repeat(64),
            strategy: "cross".into(),
            params: vec![],
        };
        let html = super::render_html(&super::Report {
            result: &result,
            inputs: &inputs,
            data_label: "synthetic",
            strategy_label: "cross",
            fingerprint: "f",
        });
        assert!(html.len() < 1 << 20, "{} bytes", html.len());
        // The price chart's top tick is the spike's close.
        assert!(
            html.contains(">170.00000<"),
            "the spike sets the price axis"
        );
        let price = &html[html.find("aria-label=\"price\"").unwrap()..];
        let points = price
            .split("points=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        let ys: Vec<f64> = points
            .split_whitespace()
            .map(|xy| xy.split(',').nth(1).unwrap().parse().unwrap())
            .collect();
        assert!(ys.len() <= 2_000, "{} points drawn", ys.len());
        // The spike is the highest point drawn (smallest y), at the top.
        let top = ys.iter().copied().fold(f64::INFINITY, f64::min);
        assert!(top < 15.0, "the spike is drawn: top y {top}");
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(
            super::esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
