//! The loopback HTTP server the remote engines' tests talk to: it records every request (method,
//! path, query, headers, body) and answers each with the same status, content type and bytes.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

pub struct Server {
    /// `http://127.0.0.1:PORT` and the path prefix asked for.
    pub base_url: String,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

/// A server on a free loopback port whose `base_url` ends in `prefix` (e.g. `/v1`).
pub async fn server(prefix: &str, status: u16, content_type: &'static str, reply: Vec<u8>) -> Server {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let app =
        axum::Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let record = record.clone();
            let reply = reply.clone();
            async move {
                record.lock().unwrap().push(Seen {
                    method,
                    path: uri.path().to_string(),
                    query: uri.query().map(str::to_string),
                    headers,
                    body: body.to_vec(),
                });
                (StatusCode::from_u16(status).unwrap(), [("content-type", content_type)], reply)
            }
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Server { base_url: format!("http://{address}{prefix}"), seen }
}

impl Server {
    /// The one request the server got.
    pub fn only_request(&self) -> Seen {
        let seen = self.seen.lock().unwrap();
        assert_eq!(seen.len(), 1, "requests: {seen:?}");
        seen[0].clone()
    }
}
