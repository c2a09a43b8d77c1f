//! Compiled JSONPath (RFC 9535) queries: parsed once at compile time, run per response.

use std::fmt;

use jsonpath_rust::parser::model::JpQuery;
use serde_json::Value;

/// A parsed JSONPath query and its source text.
#[derive(Clone)]
pub struct JsonPath {
    source: String,
    query: JpQuery,
}

/// Why a JSONPath expression did not parse.
#[derive(Debug, Clone, thiserror::Error)]
#[error("invalid JSONPath `{source_text}`: {reason}")]
pub struct JsonPathError {
    pub source_text: String,
    pub reason: String,
}

impl JsonPath {
    pub fn parse(source: &str) -> Result<Self, JsonPathError> {
        match jsonpath_rust::parser::parse_json_path(source) {
            Ok(query) => Ok(JsonPath {
                source: source.to_owned(),
                query,
            }),
            Err(e) => Err(JsonPathError {
                source_text: source.to_owned(),
                reason: short_reason(&e.to_string()),
            }),
        }
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The nodes the query selects, in document order.
    pub fn query<'a>(&self, value: &'a Value) -> Vec<&'a Value> {
        jsonpath_rust::query::js_path_process(&self.query, value)
            .map(|refs| refs.into_iter().map(|r| r.val()).collect())
            .unwrap_or_default()
    }

    /// The first node the query selects.
    pub fn first<'a>(&self, value: &'a Value) -> Option<&'a Value> {
        self.query(value).into_iter().next()
    }
}

/// The parser's multi-line report, reduced to its last line ("expected ...").
fn short_reason(full: &str) -> String {
    let last = full
        .lines()
        .map(|l| l.trim().trim_start_matches('=').trim())
        .rfind(|l| !l.is_empty() && !l.starts_with('|') && !l.starts_with("-->"));
    let column = full
        .lines()
        .find_map(|l| l.find("-->").map(|i| &l[i + 3..]))
        .and_then(|l| l.trim().split(':').nth(1))
        .map(|c| format!(" (at character {})", c.trim()));
    match last {
        Some(l) => format!("{l}{}", column.unwrap_or_default()),
        None => full.trim().to_owned(),
    }
}

impl fmt::Debug for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JsonPath({})", self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_once_and_queries() {
        let p = JsonPath::parse("$.items[0].price").unwrap();
        let v: Value = serde_json::json!({"items": [{"price": 3}]});
        assert_eq!(p.first(&v), Some(&serde_json::json!(3)));
        assert!(JsonPath::parse("$.items[?(").is_err());
    }
}
