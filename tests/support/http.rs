//! A small HTTP client for the demo-server tests (`tests/server.rs` and
//! `backends/redis/tests/web_server.rs` include this file): an axum app
//! served on a free loopback port, and its replies with header helpers.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// An app served on 127.0.0.1, and a client for it.
pub struct TestServer {
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

/// A response, read whole.
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: String,
}

/// Serves `app` (with the peer address as `ConnectInfo`) on a free
/// loopback port until the test's runtime ends.
pub async fn serve_app(app: axum::Router) -> TestServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    TestServer {
        base: format!("http://{addr}"),
        client: Client::builder(TokioExecutor::new()).build_http(),
    }
}

impl TestServer {
    /// One request; a JSON `body` is sent with its content type.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Reply {
        let mut req = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let bytes = match body {
            Some(v) => {
                req = req.header("content-type", "application/json");
                Bytes::from(v.to_string())
            }
            None => Bytes::new(),
        };
        let res = self
            .client
            .request(req.body(Full::new(bytes)).unwrap())
            .await
            .unwrap();
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        self.send("GET", path, headers, None).await
    }

    pub async fn post(&self, path: &str, headers: &[(&str, &str)], body: Value) -> Reply {
        self.send("POST", path, headers, Some(body)).await
    }
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// Every value of a header (list items of several lines).
    pub fn all(&self, name: &str) -> Vec<String> {
        self.headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_owned)
            .collect()
    }
    /// The draft-8 `RateLimit` item of a named policy.
    pub fn rate_limit(&self, policy: &str) -> Option<String> {
        let prefix = format!("\"{policy}\";");
        self.all("ratelimit")
            .into_iter()
            .flat_map(|v| v.split(", ").map(str::to_owned).collect::<Vec<_>>())
            .find(|item| item.starts_with(&prefix))
    }
    /// The `RateLimit-Policy` item of a named policy.
    pub fn policy(&self, policy: &str) -> Option<String> {
        let prefix = format!("\"{policy}\";");
        self.all("ratelimit-policy")
            .into_iter()
            .find(|item| item.starts_with(&prefix))
    }
    /// The session cookie's value from `Set-Cookie` (`Some("")` = cleared).
    pub fn cookie(&self) -> Option<String> {
        self.all("set-cookie").into_iter().find_map(|c| {
            let first = c.split(';').next()?.trim().to_owned();
            first.strip_prefix("sid=").map(str::to_owned)
        })
    }
}
