//! A go-jsonrpc client: JSON-RPC 2.0 with positional params over HTTP POST, and over a
//! WebSocket for the methods that return a channel (`ChainNotify`), with go-jsonrpc's
//! `xrpc.ch.val` / `xrpc.ch.close` notifications.
//!
//! Transport failures (connection refused, timeouts, 502/503/504) are retried with
//! exponential backoff; an answer from the node, error or not, never is, because a node that
//! answered has decided.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use url::Url;

use market_core::chain::ChainError;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RpcError {
    /// The node could not be reached or the connection broke (after the retries).
    #[error("{method}: cannot reach the node at {url}")]
    Transport {
        /// The method.
        method: String,
        /// The endpoint.
        url: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The node answered with an HTTP status instead of JSON-RPC.
    #[error("{method}: HTTP {status}{}", if *status == 401 { " (the token is missing, malformed or not valid for this node)" } else { "" })]
    Http {
        /// The method.
        method: String,
        /// The status.
        status: u16,
    },
    /// The node answered with a JSON-RPC error.
    #[error("{method}: {message} (code {code})")]
    Rpc {
        /// The method.
        method: String,
        /// The JSON-RPC code: 1 for an ordinary node error, −32601 unknown method, ….
        code: i64,
        /// The node's message.
        message: String,
    },
    /// The answer was not the JSON expected.
    #[error("{method}: malformed answer: {reason}")]
    Decode {
        /// The method.
        method: String,
        /// What was wrong.
        reason: String,
    },
    /// The answer was larger than the limit.
    #[error("{method}: answer larger than {limit} bytes")]
    TooLarge {
        /// The method.
        method: String,
        /// The limit.
        limit: usize,
    },
    /// The WebSocket failed.
    #[error("{method}: websocket: {reason}")]
    WebSocket {
        /// The method.
        method: String,
        /// What failed.
        reason: String,
    },
}

impl RpcError {
    /// The node's error message, for the errors the node sent.
    pub fn node_message(&self) -> Option<&str> {
        match self {
            Self::Rpc { message, .. } => Some(message),
            _ => None,
        }
    }

    /// Whether trying again later may succeed (the node was not reached or not ready).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Transport { .. } | Self::WebSocket { .. } => true,
            Self::Http { status, .. } => matches!(status, 502..=504),
            _ => false,
        }
    }
}

impl From<RpcError> for ChainError {
    fn from(e: RpcError) -> Self {
        match e {
            RpcError::Rpc {
                method,
                code,
                message,
            } => ChainError::Rpc {
                method,
                code,
                message,
            },
            RpcError::Decode { method, reason } => ChainError::Decode { method, reason },
            e if e.is_transient() => ChainError::Node(market_core::report(&e)),
            e => ChainError::Rpc {
                method: String::new(),
                code: 0,
                message: market_core::report(&e),
            },
        }
    }
}

/// Client settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RpcConfig {
    /// Timeout of an ordinary call.
    pub timeout: Duration,
    /// Timeout of a call that blocks on the chain (`StateWaitMsg`).
    pub long_timeout: Duration,
    /// Attempts for a call that fails in transport.
    pub attempts: u32,
    /// First backoff; doubles per attempt.
    pub backoff: Duration,
    /// Largest answer accepted.
    pub max_response_bytes: usize,
}

impl Default for RpcConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(60),
            long_timeout: Duration::from_secs(3600),
            attempts: 4,
            backoff: Duration::from_millis(250),
            max_response_bytes: 64 << 20,
        }
    }
}

impl RpcConfig {
    /// Sets [`timeout`](Self::timeout).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets [`long_timeout`](Self::long_timeout).
    pub fn with_long_timeout(mut self, long_timeout: Duration) -> Self {
        self.long_timeout = long_timeout;
        self
    }

    /// Sets [`attempts`](Self::attempts) and [`backoff`](Self::backoff).
    pub fn with_retries(mut self, attempts: u32, backoff: Duration) -> Self {
        self.attempts = attempts.max(1);
        self.backoff = backoff;
        self
    }
}

/// A JSON-RPC endpoint: URL, bearer token and method namespace.
#[derive(Clone)]
pub struct RpcClient {
    http: reqwest::Client,
    url: Url,
    token: Option<String>,
    namespace: String,
    config: RpcConfig,
}

impl std::fmt::Debug for RpcClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcClient")
            .field("url", &self.url.as_str())
            .field("namespace", &self.namespace)
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .finish()
    }
}

impl RpcClient {
    /// A client of `url` (`http://host:1234/rpc/v1`) calling `<namespace>.<Method>`.
    pub fn new(url: Url, token: Option<String>, namespace: &str, config: RpcConfig) -> Self {
        Self {
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
            url,
            token: token.filter(|t| !t.trim().is_empty()),
            namespace: namespace.to_string(),
            config,
        }
    }

    /// The same endpoint under another namespace (`Filecoin`, `Gateway`, `Message`, `Dev`).
    pub fn with_namespace(&self, namespace: &str) -> Self {
        Self {
            namespace: namespace.to_string(),
            ..self.clone()
        }
    }

    /// The endpoint.
    pub fn url(&self) -> &Url {
        &self.url
    }

    fn full(&self, method: &str) -> String {
        format!("{}.{method}", self.namespace)
    }

    /// Calls `method` with positional `params`.
    pub async fn call<P: Serialize, R: DeserializeOwned>(
        &self,
        method: &str,
        params: P,
    ) -> Result<R, RpcError> {
        self.call_with(method, params, self.config.timeout).await
    }

    /// Calls a method that blocks on the chain, with the long timeout.
    pub async fn call_long<P: Serialize, R: DeserializeOwned>(
        &self,
        method: &str,
        params: P,
    ) -> Result<R, RpcError> {
        self.call_with(method, params, self.config.long_timeout)
            .await
    }

    async fn call_with<P: Serialize, R: DeserializeOwned>(
        &self,
        method: &str,
        params: P,
        timeout: Duration,
    ) -> Result<R, RpcError> {
        let name = self.full(method);
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": name, "params": params});
        let body = serde_json::to_vec(&body).map_err(|e| RpcError::Decode {
            method: name.clone(),
            reason: format!("encoding params: {e}"),
        })?;
        let mut backoff = self.config.backoff;
        let mut attempt = 1;
        loop {
            match self.once(&name, body.clone(), timeout).await {
                Err(e) if e.is_transient() && attempt < self.config.attempts => {
                    tracing::debug!(method = %name, attempt, error = %e, "node call failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                    attempt += 1;
                }
                Err(e) => return Err(e),
                Ok(v) => return decode_result(&name, v),
            }
        }
    }

    async fn once(&self, name: &str, body: Vec<u8>, timeout: Duration) -> Result<Value, RpcError> {
        let mut req = self
            .http
            .post(self.url.clone())
            .timeout(timeout)
            .header("Content-Type", "application/json")
            .body(body);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t.trim());
        }
        let transport = |source| RpcError::Transport {
            method: name.to_string(),
            url: self.url.to_string(),
            source,
        };
        let mut resp = req.send().await.map_err(transport)?;
        let status = resp.status().as_u16();
        if status != 200 {
            return Err(RpcError::Http {
                method: name.to_string(),
                status,
            });
        }
        let limit = self.config.max_response_bytes;
        let mut buf = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(transport)? {
            if buf.len() + chunk.len() > limit {
                return Err(RpcError::TooLarge {
                    method: name.to_string(),
                    limit,
                });
            }
            buf.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&buf).map_err(|e| RpcError::Decode {
            method: name.to_string(),
            reason: e.to_string(),
        })
    }

    /// Calls a channel-returning method over a WebSocket; each value the node sends arrives
    /// on the receiver, which closes when the node closes the channel or the socket drops
    /// (re-subscribe then: go-jsonrpc channels do not resume).
    pub async fn subscribe<P: Serialize>(
        &self,
        method: &str,
        params: P,
    ) -> Result<mpsc::Receiver<Value>, RpcError> {
        use tokio_tungstenite::tungstenite::Message as Ws;
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let name = self.full(method);
        let ws_err = |reason: String| RpcError::WebSocket {
            method: name.clone(),
            reason,
        };
        let mut url = self.url.clone();
        let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
        url.set_scheme(scheme)
            .map_err(|_| ws_err(format!("cannot use {} over a websocket", self.url)))?;
        let mut request = url
            .as_str()
            .into_client_request()
            .map_err(|e| ws_err(e.to_string()))?;
        if let Some(t) = &self.token {
            let v = format!("Bearer {}", t.trim())
                .parse()
                .map_err(|_| ws_err("token is not a valid header value".into()))?;
            request.headers_mut().insert("Authorization", v);
        }
        let (mut socket, _) = tokio::time::timeout(
            self.config.timeout,
            tokio_tungstenite::connect_async(request),
        )
        .await
        .map_err(|_| ws_err("connect timed out".into()))?
        .map_err(|e| ws_err(e.to_string()))?;
        let call = json!({"jsonrpc": "2.0", "id": 1, "method": name, "params": params});
        socket
            .send(Ws::Text(call.to_string().into()))
            .await
            .map_err(|e| ws_err(e.to_string()))?;
        // The call's own answer carries the channel id.
        let channel = loop {
            let frame = tokio::time::timeout(self.config.timeout, socket.next())
                .await
                .map_err(|_| ws_err("no answer to the subscription".into()))?
                .ok_or_else(|| ws_err("closed before answering".into()))?
                .map_err(|e| ws_err(e.to_string()))?;
            let Ws::Text(text) = frame else { continue };
            let v: Value = serde_json::from_str(&text).map_err(|e| ws_err(e.to_string()))?;
            if v.get("id").is_some() {
                break decode_result::<Value>(&name, v)?;
            }
        };
        let (tx, rx) = mpsc::channel(64);
        let limit = self.config.max_response_bytes;
        tokio::spawn(async move {
            while let Some(Ok(frame)) = socket.next().await {
                let text = match frame {
                    Ws::Text(t) if t.len() <= limit => t,
                    Ws::Ping(p) => {
                        let _ = socket.send(Ws::Pong(p)).await;
                        continue;
                    }
                    Ws::Close(_) => break,
                    _ => continue,
                };
                let Ok(v) = serde_json::from_str::<Value>(&text) else {
                    tracing::warn!("malformed websocket frame from the node; closing");
                    break;
                };
                let method = v.get("method").and_then(Value::as_str).unwrap_or_default();
                let params = v.get("params").and_then(Value::as_array);
                let ours = params.and_then(|p| p.first()) == Some(&channel);
                if !ours {
                    continue;
                }
                match (method, params) {
                    ("xrpc.ch.val", Some(p)) => {
                        let value = p.get(1).cloned().unwrap_or(Value::Null);
                        if tx.send(value).await.is_err() {
                            break;
                        }
                    }
                    ("xrpc.ch.close", _) => break,
                    _ => {}
                }
            }
        });
        Ok(rx)
    }
}

fn decode_result<R: DeserializeOwned>(method: &str, mut v: Value) -> Result<R, RpcError> {
    if let Some(err) = v.get("error").filter(|e| !e.is_null()) {
        return Err(RpcError::Rpc {
            method: method.to_string(),
            code: err.get("code").and_then(Value::as_i64).unwrap_or(0),
            message: err
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("(no message)")
                .chars()
                .take(4096)
                .collect(),
        });
    }
    // go-jsonrpc omits `result` for methods that return only an error.
    let result = v.get_mut("result").map(Value::take).unwrap_or(Value::Null);
    serde_json::from_value(result).map_err(|e| RpcError::Decode {
        method: method.to_string(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_keep_lotus_code_and_message() {
        let v = json!({"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"deal 5432 not found"}});
        match decode_result::<Value>("Filecoin.StateMarketStorageDeal", v) {
            Err(RpcError::Rpc { code, message, .. }) => {
                assert_eq!(code, 1);
                assert_eq!(message, "deal 5432 not found");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn absent_result_is_null() {
        let v = json!({"jsonrpc":"2.0","id":1});
        let r: Option<u64> = decode_result("Filecoin.MarketReleaseFunds", v).unwrap();
        assert_eq!(r, None);
        let v = json!({"jsonrpc":"2.0","id":1,"result":"nope"});
        assert!(matches!(
            decode_result::<u64>("Filecoin.MpoolGetNonce", v),
            Err(RpcError::Decode { .. })
        ));
    }
}
