//! Ask: a question answered from the analyst's stored records only.
//!
//! The records chosen ([`select`]: those of the symbols the question names,
//! or of every symbol, newest first) go to the model with the question,
//! each with its id (`SYMBOL@TIME`), its analysis and the context it was
//! made from (candles, indicators, signals). The model must answer with
//! `{"answer": ..., "records": [ids], "no_data": bool}`: every answer
//! cites the records it rests on, and only records it was given
//! ([`Answer::parse`]). With no record to give, or when the model says the
//! records do not hold the answer, the answer is [`NO_DATA`], never a
//! guess; no call is made without records.

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::{Analyst, AnalystError, Cause, Record, Results, Spent};

/// The answer when the records do not hold one.
pub const NO_DATA: &str = "no data for that";

/// Longest answer, in characters.
pub const MAX_ANSWER: usize = 4000;

/// Records sent with one question at most.
pub const MAX_RECORDS: usize = 20;

const PROMPT: &str = "You answer questions about a trading engine's markets using ONLY the \
records in the user message (JSON: a question, and records, each with an id, a symbol, a time, \
the analysis made then and the data it was made from). Do not use anything else you know. \
Answer with one JSON object: \"answer\" (a short answer citing numbers from the records), \
\"records\" (the ids of the records the answer rests on; at least one), \"no_data\" (false). If \
the records do not hold the answer, give {\"answer\":\"no data for that\",\"records\":[],\
\"no_data\":true}.";

/// A record's id in questions and answers.
pub fn record_id(r: &Record) -> String {
    format!("{}@{}", r.symbol, r.time)
}

/// The model's answer, checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    pub answer: String,
    /// Ids of the records the answer rests on.
    pub records: Vec<String>,
    pub no_data: bool,
}

impl Answer {
    /// Parses the model's answer: the schema, a non-empty answer of at
    /// most [`MAX_ANSWER`] characters, and cited ids all among `given`
    /// (at least one unless `no_data`).
    ///
    /// # Errors
    /// The reason, in words.
    pub fn parse(content: &str, given: &[String]) -> Result<Answer, String> {
        let a: Answer = serde_json::from_str(content.trim())
            .map_err(|e| format!("the answer is not the ask JSON: {e}"))?;
        let n = a.answer.trim().chars().count();
        if n == 0 || n > MAX_ANSWER {
            return Err(format!("the answer has {n} characters (1 to {MAX_ANSWER})"));
        }
        if let Some(unknown) = a.records.iter().find(|id| !given.contains(id)) {
            return Err(format!(
                "the answer cites record {unknown:?}, which it was not given"
            ));
        }
        if !a.no_data && a.records.is_empty() {
            return Err("the answer cites no record".to_owned());
        }
        Ok(a)
    }
}

/// The JSON Schema of [`Answer`].
pub fn answer_schema() -> serde_json::Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["answer", "records", "no_data"],
        "properties": {
            "answer": {"type": "string", "maxLength": MAX_ANSWER},
            "records": {"type": "array", "items": {"type": "string"}, "maxItems": MAX_RECORDS},
            "no_data": {"type": "boolean"}
        }
    })
}

/// The records for `question`: of `symbol` when given, else of the stored
/// symbols the question names (every stored symbol when it names none),
/// done analyses with `from <= time <= to`, the newest `per_symbol` of
/// each, at most [`MAX_RECORDS`] in all (newest first).
///
/// # Errors
/// As [`Results::range`].
pub fn select(
    results: &Results,
    question: &str,
    symbol: Option<&str>,
    from: i64,
    to: i64,
    per_symbol: usize,
) -> Result<Vec<Record>, AnalystError> {
    let symbols: Vec<String> = match symbol {
        Some(s) => vec![s.to_owned()],
        None => {
            let all = results.symbols()?;
            let upper = question.to_uppercase();
            let named: Vec<String> = all
                .iter()
                .filter(|s| upper.contains(s.as_str()))
                .cloned()
                .collect();
            if named.is_empty() {
                all
            } else {
                named
            }
        }
    };
    let mut out = Vec::new();
    for s in &symbols {
        // Failed records hold no analysis: read more, keep the done ones.
        let mut done: Vec<Record> = results
            .range(s, from, to, per_symbol.saturating_mul(4).max(per_symbol))?
            .into_iter()
            .filter(Record::is_ok)
            .collect();
        let skip = done.len().saturating_sub(per_symbol);
        out.extend(done.drain(skip..));
    }
    out.sort_by_key(|r| std::cmp::Reverse(r.time));
    out.truncate(MAX_RECORDS);
    Ok(out)
}

/// What [`ask`] came to.
#[derive(Debug, Clone)]
pub struct Asked {
    /// The answer ([`NO_DATA`] when the records do not hold one); `None`
    /// when the call failed (see `failure`).
    pub answer: Option<String>,
    /// The records the answer cites.
    pub used: Vec<Record>,
    pub failure: Option<(Cause, String)>,
    pub spent: Spent,
}

/// Asks `question` about `records` (from [`select`]).
///
/// # Errors
/// [`AnalystError::Budget`] when the day's budget leaves nothing.
pub async fn ask(
    analyst: &Analyst,
    question: &str,
    records: &[Record],
) -> Result<Asked, AnalystError> {
    if records.is_empty() {
        return Ok(Asked {
            answer: Some(NO_DATA.to_owned()),
            used: Vec::new(),
            failure: None,
            spent: Spent::default(),
        });
    }
    let ids: Vec<String> = records.iter().map(record_id).collect();
    let user = json!({
        "question": question,
        "records": records.iter().zip(&ids).map(|(r, id)| json!({
            "id": id,
            "symbol": r.symbol,
            "time": candlewick_market::time::format_ms(r.time),
            "trigger": r.trigger,
            "analysis": r.analysis,
            "data": r.context,
        })).collect::<Vec<_>>(),
    })
    .to_string();
    let parse = |c: &str| Answer::parse(c, &ids);
    let (r, spent) = analyst
        .complete(PROMPT, &user, "answer", answer_schema(), &parse)
        .await?;
    Ok(match r {
        Ok(a) if a.no_data => Asked {
            answer: Some(NO_DATA.to_owned()),
            used: Vec::new(),
            failure: None,
            spent,
        },
        Ok(a) => Asked {
            used: records
                .iter()
                .filter(|r| a.records.contains(&record_id(r)))
                .cloned()
                .collect(),
            answer: Some(a.answer),
            failure: None,
            spent,
        },
        Err(f) => Asked {
            answer: None,
            used: Vec::new(),
            failure: Some(f),
            spent,
        },
    })
}

/// Records per symbol [`answer_http`] sends with a question.
pub const HTTP_PER_SYMBOL: usize = 5;

/// `POST /v1/ask`'s answer: (status, JSON). 200 with `answer`, `records`
/// (id, symbol, time, analysis) and the cost; 429 `budget_reached`; 502
/// `answer_failed` with the [`Cause`] only (the detail is logged, not
/// returned); 500 `internal` when the store fails.
pub async fn answer_http(
    analyst: &Analyst,
    question: &str,
    symbol: Option<&str>,
) -> (u16, serde_json::Value) {
    let records = match select(
        analyst.results(),
        question,
        symbol,
        0,
        i64::MAX,
        HTTP_PER_SYMBOL,
    ) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("ask: reading the records: {e}");
            return (500, json!({"error": "internal"}));
        }
    };
    match ask(analyst, question, &records).await {
        Ok(Asked {
            answer: Some(answer),
            used,
            spent,
            ..
        }) => (
            200,
            json!({
                "answer": answer,
                "records": used.iter().map(|r| json!({
                    "id": record_id(r),
                    "symbol": r.symbol,
                    "time": r.time,
                    "analysis": r.analysis,
                })).collect::<Vec<_>>(),
                "tokens_in": spent.tokens_in,
                "tokens_out": spent.tokens_out,
                "cost_usd": spent.cost_usd,
            }),
        ),
        Ok(Asked { failure, .. }) => {
            let cause = failure.as_ref().map_or("unknown", |(c, _)| c.as_str());
            if let Some((_, detail)) = &failure {
                tracing::warn!(cause, "ask: no answer: {detail}");
            }
            (502, json!({"error": "answer_failed", "cause": cause}))
        }
        Err(AnalystError::Budget { .. }) => (429, json!({"error": "budget_reached"})),
        Err(e) => {
            tracing::error!("ask: {e}");
            (500, json!({"error": "internal"}))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_must_cite_only_given_records() {
        let given = vec!["BTCUSDT@1".to_owned()];
        let ok = r#"{"answer":"bullish at 0.7","records":["BTCUSDT@1"],"no_data":false}"#;
        assert_eq!(Answer::parse(ok, &given).unwrap().records, given);
        let none = r#"{"answer":"no data for that","records":[],"no_data":true}"#;
        assert!(Answer::parse(none, &given).unwrap().no_data);
        for (bad, why) in [
            (ok.replace("BTCUSDT@1", "ETHUSDT@2"), "not given"),
            (ok.replace("[\"BTCUSDT@1\"]", "[]"), "cites no record"),
            (ok.replace("bullish at 0.7", " "), "0 characters"),
            (
                ok.replace("\"no_data\"", "\"x\":1,\"no_data\""),
                "unknown field",
            ),
        ] {
            let e = Answer::parse(&bad, &given).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
