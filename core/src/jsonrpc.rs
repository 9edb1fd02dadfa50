//! The JSON-RPC 2.0 envelope as the servers here (the node's admin and sealer API, the
//! devnet's Lotus API) read and answer it: single calls and batches, positional params as
//! go-jsonrpc sends them, the standard error codes, and bounds on what a caller can make the
//! server do or echo.
//!
//! What the method does is the server's business: [`answer`] parses a body, hands every
//! valid call to a dispatch function in order and builds the reply.

use std::future::Future;

use serde_json::{Value, json};

pub use crate::report::{MAX_ECHO, clip};

/// The body is not JSON.
pub const PARSE_ERROR: i64 = -32700;
/// JSON, but not a request object (no method, a bad id, an empty batch).
pub const INVALID_REQUEST: i64 = -32600;
/// No such method.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// The params do not fit the method.
pub const INVALID_PARAMS: i64 = -32602;
/// What go-jsonrpc sends for an error the method returned.
pub const SERVER_ERROR: i64 = 1;

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// The JSON-RPC error code.
    pub code: i64,
    /// What went wrong, for people.
    pub message: String,
}

impl Fault {
    /// An error with `code`.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// The method's own failure (go-jsonrpc's code 1).
    pub fn server(message: impl Into<String>) -> Self {
        Self::new(SERVER_ERROR, message)
    }

    /// Params that do not fit the method.
    pub fn params(message: impl Into<String>) -> Self {
        Self::new(INVALID_PARAMS, message)
    }

    /// A method that does not exist; its name is clipped.
    pub fn not_found(method: &str) -> Self {
        Self::new(
            METHOD_NOT_FOUND,
            format!("method '{}' not found", clip(method)),
        )
    }
}

/// One valid call.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// Its id; `None` for a notification, which gets no answer.
    pub id: Option<Value>,
    /// The method name, never empty.
    pub method: String,
    /// Positional params (`[]` when absent).
    pub params: Vec<Value>,
}

/// Bounds on one body.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Limits {
    /// Most calls in one batch.
    pub max_batch: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_batch: 100 }
    }
}

/// A valid call out of one request object, or the error answer it gets with its id (null
/// when the id itself is what is wrong).
pub fn call_of(request: Value) -> Result<Call, (Value, Fault)> {
    let invalid = |id: Value, why: &str| (id, Fault::new(INVALID_REQUEST, why.to_string()));
    let Value::Object(mut object) = request else {
        return Err(invalid(Value::Null, "a request must be a JSON object"));
    };
    let id = match object.remove("id") {
        None => None,
        Some(id @ (Value::Null | Value::Number(_) | Value::String(_))) => Some(id),
        Some(_) => return Err(invalid(Value::Null, "id must be a string, number or null")),
    };
    let answer_id = || id.clone().unwrap_or(Value::Null);
    match object.get("jsonrpc") {
        None => {}
        Some(Value::String(v)) if v == "2.0" => {}
        Some(_) => return Err(invalid(answer_id(), "jsonrpc must be \"2.0\"")),
    }
    let method = match object.remove("method") {
        Some(Value::String(m)) if !m.is_empty() => m,
        Some(Value::String(_)) => return Err(invalid(answer_id(), "method is empty")),
        Some(_) => return Err(invalid(answer_id(), "method must be a string")),
        None => return Err(invalid(answer_id(), "method is missing")),
    };
    let params = match object.remove("params") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a,
        Some(_) => {
            return Err((
                answer_id(),
                Fault::params("params must be positional (a JSON array)"),
            ));
        }
    };
    Ok(Call { id, method, params })
}

/// The answer frame for `id`.
pub fn reply(id: Value, result: Result<Value, Fault>) -> Value {
    match result {
        Ok(r) => json!({"jsonrpc": "2.0", "id": id, "result": r}),
        Err(f) => {
            json!({"jsonrpc": "2.0", "id": id, "error": {"code": f.code, "message": f.message}})
        }
    }
}

/// Parses `body`, runs every valid call through `dispatch` in order (a batch's calls may
/// depend on each other) and returns the reply: one frame, an array for a batch, or `None`
/// when only notifications came.
pub async fn answer<F, Fut>(body: &[u8], limits: &Limits, mut dispatch: F) -> Option<Value>
where
    F: FnMut(Call) -> Fut,
    Fut: Future<Output = Result<Value, Fault>>,
{
    let parsed: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            let fault = Fault::new(PARSE_ERROR, format!("parse error: {e}"));
            return Some(reply(Value::Null, Err(fault)));
        }
    };
    let (requests, batch) = match parsed {
        Value::Array(items) if items.is_empty() => {
            let fault = Fault::new(INVALID_REQUEST, "empty batch");
            return Some(reply(Value::Null, Err(fault)));
        }
        Value::Array(items) if items.len() > limits.max_batch => {
            let fault = Fault::new(
                INVALID_REQUEST,
                format!(
                    "batch of {} calls, at most {} allowed",
                    items.len(),
                    limits.max_batch
                ),
            );
            return Some(reply(Value::Null, Err(fault)));
        }
        Value::Array(items) => (items, true),
        one => (vec![one], false),
    };
    let mut answers = Vec::new();
    for request in requests {
        match call_of(request) {
            Err((id, fault)) => answers.push(reply(id, Err(fault))),
            Ok(call) => {
                let id = call.id.clone();
                let result = dispatch(call).await;
                if let Some(id) = id {
                    answers.push(reply(id, result));
                }
            }
        }
    }
    match (batch, answers.len()) {
        (_, 0) => None,
        (false, _) => answers.pop(),
        (true, _) => Some(Value::Array(answers)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn echo(body: &str) -> Option<Value> {
        answer(
            body.as_bytes(),
            &Limits { max_batch: 3 },
            |c: Call| async move {
                match c.method.as_str() {
                    "Echo" => Ok(Value::Array(c.params)),
                    "Fail" => Err(Fault::server("failed")),
                    m => Err(Fault::not_found(m)),
                }
            },
        )
        .await
    }

    fn code(v: &Value) -> i64 {
        v["error"]["code"].as_i64().unwrap()
    }

    #[tokio::test]
    async fn single_calls_and_their_errors() {
        let ok = echo(r#"{"jsonrpc":"2.0","id":7,"method":"Echo","params":[1]}"#).await;
        assert_eq!(ok.unwrap(), json!({"jsonrpc":"2.0","id":7,"result":[1]}));
        let cases = [
            ("{", PARSE_ERROR),
            ("[]", INVALID_REQUEST),
            ("42", INVALID_REQUEST),
            (r#"{"id":1}"#, INVALID_REQUEST),
            (r#"{"id":1,"method":""}"#, INVALID_REQUEST),
            (r#"{"id":1,"method":5}"#, INVALID_REQUEST),
            (r#"{"id":[1],"method":"Echo"}"#, INVALID_REQUEST),
            (
                r#"{"jsonrpc":"1.0","id":1,"method":"Echo"}"#,
                INVALID_REQUEST,
            ),
            (
                r#"{"id":1,"method":"Echo","params":{"a":1}}"#,
                INVALID_PARAMS,
            ),
            (r#"{"id":1,"method":"Nope"}"#, METHOD_NOT_FOUND),
            (r#"{"id":1,"method":"Fail"}"#, SERVER_ERROR),
        ];
        for (body, want) in cases {
            assert_eq!(code(&echo(body).await.unwrap()), want, "{body}");
        }
        // The id survives an invalid request when it is itself valid.
        let v = echo(r#"{"id":"x","method":""}"#).await.unwrap();
        assert_eq!(v["id"], "x");
    }

    #[tokio::test]
    async fn batches_answer_in_order_and_skip_notifications() {
        let v = echo(
            r#"[{"id":1,"method":"Echo","params":[1]},{"method":"Echo"},{"id":2,"method":""},5]"#,
        )
        .await;
        // Four items over a limit of three.
        assert_eq!(code(&v.unwrap()), INVALID_REQUEST);
        let v = echo(
            r#"[{"id":1,"method":"Echo","params":[1]},{"method":"Echo"},{"id":2,"method":""}]"#,
        )
        .await
        .unwrap();
        let items = v.as_array().unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0]["result"], json!([1]));
        assert_eq!(
            (items[1]["id"].clone(), code(&items[1])),
            (json!(2), INVALID_REQUEST)
        );
        assert_eq!(echo(r#"[{"method":"Echo"}]"#).await, None);
        assert_eq!(echo(r#"{"method":"Echo"}"#).await, None);
    }

    #[tokio::test]
    async fn long_input_is_clipped_in_answers() {
        let name = "b".repeat(10_000);
        let v = echo(&format!(r#"{{"id":1,"method":"{name}"}}"#))
            .await
            .unwrap();
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.len() < 200, "{message}");
        assert!(message.contains("10000 bytes"));
        assert_eq!(clip("short"), "short");
        assert_eq!(clip(&"é".repeat(MAX_ECHO)), "é".repeat(MAX_ECHO));
    }
}
