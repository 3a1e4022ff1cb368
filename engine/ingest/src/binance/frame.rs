//! Parsing kline frames without copying their strings.

use candlewick_market::Candle;
use serde::Deserialize;

/// A combined-stream message: `{"stream":"btcusdt@kline_1m","data":{...}}`.
#[derive(Debug, Deserialize)]
pub(crate) struct Combined<'a> {
    #[serde(borrow)]
    pub stream: &'a str,
    #[serde(borrow)]
    pub data: KlineEvent<'a>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct KlineEvent<'a> {
    #[serde(rename = "e", borrow)]
    pub event: &'a str,
    #[serde(borrow)]
    pub k: Kline<'a>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Kline<'a> {
    pub t: i64,
    #[serde(borrow)]
    pub o: &'a str,
    #[serde(borrow)]
    pub h: &'a str,
    #[serde(borrow)]
    pub l: &'a str,
    #[serde(borrow)]
    pub c: &'a str,
    #[serde(borrow)]
    pub v: &'a str,
    pub x: bool,
}

/// What one text frame holds.
#[derive(Debug, PartialEq)]
pub(crate) enum Frame<'a> {
    Kline {
        stream: &'a str,
        candle: Candle,
        closed: bool,
    },
    /// A reply to a request, or another event type: not an error.
    Other,
}

/// Parses a combined-stream frame. `Err` carries a short reason.
pub(crate) fn parse(text: &str) -> Result<Frame<'_>, String> {
    if text.starts_with("{\"result\"") || text.starts_with("{\"id\"") {
        return Ok(Frame::Other);
    }
    let msg: Combined<'_> = serde_json::from_str(text).map_err(|e| e.to_string())?;
    if msg.data.event != "kline" {
        return Ok(Frame::Other);
    }
    let k = &msg.data.k;
    let num = |field: &str, s: &str| {
        s.parse::<f64>()
            .map_err(|_| format!("{field} {s:?} is not a number"))
    };
    let candle = Candle {
        open_time: k.t,
        open: num("o", k.o)?,
        high: num("h", k.h)?,
        low: num("l", k.l)?,
        close: num("c", k.c)?,
        volume: num("v", k.v)?,
    };
    candle.check().map_err(|e| e.to_string())?;
    Ok(Frame::Kline {
        stream: msg.stream,
        candle,
        closed: k.x,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: &str = r#"{"stream":"btcusdt@kline_1m","data":{"e":"kline","E":1700000060001,"s":"BTCUSDT","k":{"t":1700000000000,"T":1700000059999,"s":"BTCUSDT","i":"1m","f":1,"L":9,"o":"43000.5","c":"43010.0","h":"43020.25","l":"42990","v":"12.5","n":9,"x":true,"q":"1","V":"1","Q":"1","B":"0"}}}"#;

    #[test]
    fn parses_a_closed_kline() {
        let Frame::Kline {
            stream,
            candle,
            closed,
        } = parse(FRAME).unwrap()
        else {
            panic!("not a kline");
        };
        assert_eq!(stream, "btcusdt@kline_1m");
        assert!(closed);
        assert_eq!(
            (candle.open_time, candle.open, candle.high, candle.volume),
            (1_700_000_000_000, 43000.5, 43020.25, 12.5)
        );
    }

    #[test]
    fn refuses_malformed_frames_with_a_reason() {
        assert!(parse("{not json").is_err());
        assert!(parse(&FRAME.replace("\"43000.5\"", "\"4x\""))
            .unwrap_err()
            .contains("\"4x\""));
        assert!(parse(&FRAME.replace("\"42990\"", "\"43100\""))
            .unwrap_err()
            .contains("low"));
        assert_eq!(parse(r#"{"result":null,"id":1}"#), Ok(Frame::Other));
    }

    proptest::proptest! {
        #[test]
        fn any_text_is_parsed_or_refused_without_panic(text in ".{0,400}") {
            let _ = parse(&text);
        }

        #[test]
        fn any_edit_of_a_real_frame_is_parsed_or_refused(at in 0usize..600, cut in 0usize..40, with in "[0-9a-z\"{}:,.\\-]{0,12}") {
            let at = at.min(FRAME.len());
            let end = (at + cut).min(FRAME.len());
            if FRAME.is_char_boundary(at) && FRAME.is_char_boundary(end) {
                let text = format!("{}{with}{}", &FRAME[..at], &FRAME[end..]);
                if let Ok(Frame::Kline { candle, .. }) = parse(&text) {
                    proptest::prop_assert!(candle.check().is_ok());
                }
            }
        }
    }
}
