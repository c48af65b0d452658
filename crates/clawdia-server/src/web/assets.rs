//! The web UI's files, embedded in the binary at build time (no build step, no CDN; the sources
//! are `crates/clawdia-server/assets/`), served with a strict Content-Security-Policy (no inline
//! script or style, nothing from other origins), `nosniff`, no framing and no referrer, and an
//! ETag so a reload costs a 304. A debug build serves the files from `CLAWDIA_WEB_ASSETS` when
//! that is set, so the UI can be worked on without rebuilding.

use std::sync::OnceLock;

use axum::body::Body;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// What every page and file of the UI is served with.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
    connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $type:literal) => {
        Asset {
            name: $name,
            content_type: $type,
            bytes: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/", $name)),
        }
    };
}

const ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("app.js", "text/javascript; charset=utf-8"),
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("icon.svg", "image/svg+xml"),
];

/// Each asset's ETag (a hash of its bytes), computed once.
fn etags() -> &'static [String] {
    static ETAGS: OnceLock<Vec<String>> = OnceLock::new();
    ETAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|asset| {
                use std::hash::{Hash as _, Hasher as _};
                let mut hasher = std::collections::hash_map::DefaultHasher::new();
                asset.bytes.hash(&mut hasher);
                format!("\"{:016x}\"", hasher.finish())
            })
            .collect()
    })
}

fn serve(name: &str, headers: &HeaderMap) -> Response {
    let Some(index) = ASSETS.iter().position(|asset| asset.name == name) else {
        return crate::ApiError::not_found("no such file").into_response();
    };
    let asset = &ASSETS[index];
    let (bytes, etag): (std::borrow::Cow<'static, [u8]>, String) = match from_disk(asset.name) {
        Some(on_disk) => {
            let etag = format!("\"dev-{}\"", on_disk.len());
            (on_disk.into(), etag)
        }
        None => (asset.bytes.into(), etags()[index].clone()),
    };
    let fresh = headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(etag.as_str());
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut response = Response::new(Body::from(bytes));
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
        response
    };
    let set = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&etag) {
        set.insert(header::ETAG, value);
    }
    // Revalidate every time: a new binary serves new files at once.
    set.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    set.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    set.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    set.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    set.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

/// A debug build's file from `CLAWDIA_WEB_ASSETS`, when that is set.
#[cfg(debug_assertions)]
fn from_disk(name: &str) -> Option<Vec<u8>> {
    std::fs::read(std::path::Path::new(&std::env::var_os("CLAWDIA_WEB_ASSETS")?).join(name)).ok()
}

/// A release build serves only what it embeds.
#[cfg(not(debug_assertions))]
fn from_disk(_: &str) -> Option<Vec<u8>> {
    None
}

pub(crate) async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

pub(crate) async fn file(Path(name): Path<String>, headers: HeaderMap) -> Response {
    serve(&name, &headers)
}
