//! The HTTP server: routes, shared state, errors, and the refused-reports log. Pages, API and
//! ingest live in their own modules; everything that touches the database runs on blocking
//! threads (`App::blocking`) so that the async workers only move bytes.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result};
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Serialize;

use super::ingest::{self, Ingest};
use super::live::Live;
use super::rules::RuleSet;
use super::store::Store;
use super::{api, now_us, pages};

pub struct App {
    pub store: Arc<Store>,
    pub ingest: Ingest,
    pub live: Live,
    pub rejections: Rejections,
    /// Token hash → cluster, for ingest (`ingest::TokenCache`).
    pub tokens: super::ingest::TokenCache,
    /// The requirements findings are checked against (`--rules`).
    pub rules: Arc<RuleSet>,
}

pub type Shared = Arc<App>;

impl App {
    /// Runs store work on a blocking thread.
    pub async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T> + Send + 'static,
    ) -> Result<T, Failure> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| Failure::internal(anyhow::anyhow!("a worker failed: {e}")))?
            .map_err(Failure::internal)
    }
}

/// An error answer: HTML for pages, JSON for the API.
#[derive(Debug)]
pub struct Failure {
    pub status: StatusCode,
    pub message: String,
    pub json: bool,
}

impl Failure {
    pub fn not_found(what: impl Into<String>) -> Failure {
        Failure { status: StatusCode::NOT_FOUND, message: what.into(), json: false }
    }
    pub fn bad_request(what: impl Into<String>) -> Failure {
        Failure { status: StatusCode::BAD_REQUEST, message: what.into(), json: false }
    }
    pub fn internal(e: anyhow::Error) -> Failure {
        eprintln!("hastack console: {e:#}");
        Failure { status: StatusCode::INTERNAL_SERVER_ERROR, message: format!("{e:#}"), json: false }
    }
    pub fn json(mut self) -> Failure {
        self.json = true;
        self
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        if self.json {
            let body = serde_json::json!({ "error": self.status.as_u16(), "message": self.message });
            (self.status, axum::Json(body)).into_response()
        } else {
            let markup = pages::error_page(self.status, &self.message);
            (self.status, axum::response::Html(markup.into_string())).into_response()
        }
    }
}

/// A report the console refused, kept in memory for the pages (the agent keeps the report).
#[derive(Debug, Clone, Serialize)]
pub struct RejectionRecord {
    pub time_us: i64,
    pub peer: String,
    /// The cluster it was for: the token's, or the one the body claims (unverified).
    pub cluster: Option<String>,
    pub reporter: Option<String>,
    pub status: u16,
    pub code: String,
    pub message: String,
}

#[derive(Default)]
pub struct Rejections {
    ring: Mutex<VecDeque<RejectionRecord>>,
}

const KEPT_REJECTIONS: usize = 200;

impl Rejections {
    pub fn record(&self, r: RejectionRecord) {
        eprintln!(
            "hastack console: refused a report from {} (cluster {}, reporter {}): {} {}: {}",
            r.peer,
            r.cluster.as_deref().unwrap_or("?"),
            r.reporter.as_deref().unwrap_or("?"),
            r.status,
            r.code,
            r.message
        );
        let mut ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        if ring.len() == KEPT_REJECTIONS {
            ring.pop_front();
        }
        ring.push_back(r);
    }

    /// Oldest first; only those of `cluster` if given.
    pub fn list(&self, cluster: Option<&str>) -> Vec<RejectionRecord> {
        let ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        ring.iter().filter(|r| cluster.is_none_or(|c| r.cluster.as_deref() == Some(c))).cloned().collect()
    }
}

pub fn router(app: Shared) -> Router {
    Router::new()
        .route("/", get(pages::fleet))
        .route("/clusters/{name}", get(pages::cluster))
        .route("/clusters/{name}/changes", get(super::changes::page).post(super::changes::page_post))
        .route("/incidents/{id}", get(pages::incident))
        .route("/events/{id}", get(pages::event))
        .route("/reports/{id}/snapshot", get(pages::snapshot))
        .route("/reports/{id}/snapshot.xml", get(pages::snapshot_xml))
        .route("/reports/{id}/report.json", get(pages::report_json))
        .route("/fleet/compare", get(super::advice::compare_page))
        .route("/live/fleet", get(super::live::fleet_stream))
        .route("/live/clusters/{name}", get(super::live::cluster_stream))
        .route("/static/console.css", get(|| async { static_file("text/css", include_str!("static/console.css")) }))
        .route(
            "/static/console.js",
            get(|| async { static_file("text/javascript", include_str!("static/console.js")) }),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/api",
            get(|| async { static_file("text/markdown; charset=utf-8", include_str!("../../docs/console-api.md")) }),
        )
        .route("/api/v1/reports", post(ingest::post_report).layer(DefaultBodyLimit::max(ingest::MAX_BODY)))
        .route("/api/v1/reports/{id}", get(api::report))
        .route("/api/v1/reports/{id}/snapshot", get(api::snapshot))
        .route("/api/v1/fleet", get(api::fleet))
        .route("/api/v1/fleet/compare", get(super::advice::api_compare))
        .route("/api/v1/rules", get(super::advice::api_rules))
        .route("/api/v1/clusters/{name}/changes", get(super::changes::get_changes).post(super::changes::post_change))
        .route("/api/v1/agent/changes/next", get(super::changes::agent_next))
        .route("/api/v1/agent/changes/{id}/steps", post(super::changes::agent_step))
        .route("/api/v1/clusters/{name}/findings", get(super::advice::api_findings))
        .route("/api/v1/clusters/{name}/recommendations", get(super::advice::api_recommendations))
        .route("/api/v1/clusters/{name}", get(api::cluster))
        .route("/api/v1/clusters/{name}/stats", get(api::stats))
        .route("/api/v1/clusters/{name}/incidents", get(api::incidents))
        .route("/api/v1/clusters/{name}/events", get(api::events))
        .route("/api/v1/incidents/{id}", get(api::incident))
        .route("/api/v1/events/{id}", get(api::event))
        .route("/api/v1/rejections", get(api::rejections))
        .route("/api/v1/stream", get(super::live::api_stream))
        .layer(middleware::from_fn(server_timing))
        .with_state(app)
}

fn static_file(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "max-age=300")], body).into_response()
}

/// `Server-Timing: app;dur=…` on every answer: the time the console spent (benchmarks read it).
async fn server_timing(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let mut response = next.run(req).await;
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    if let Ok(v) = HeaderValue::from_str(&format!("app;dur={ms:.2}")) {
        response.headers_mut().insert("server-timing", v);
    }
    response
}

/// Serves until SIGTERM or SIGINT. Prints the address it listens on (port 0 picks a free one).
pub async fn serve(store: Arc<Store>, listen: SocketAddr, writers: usize, rules: Arc<RuleSet>) -> Result<()> {
    let live = Live::new();
    let ingest = Ingest::start(store.clone(), writers, live.clone())?;
    let app = Arc::new(App {
        store: store.clone(),
        ingest,
        live: live.clone(),
        rejections: Rejections::default(),
        tokens: Default::default(),
        rules,
    });
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    println!("hastack console: listening on http://{addr}/ (database {})", store.url().display());
    let _ = std::io::Write::flush(&mut std::io::stdout());
    let started = now_us();
    axum::serve(listener, router(app).into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(async move {
            shutdown().await;
            live.close();
        })
        .await
        .context("the HTTP server failed")?;
    eprintln!("hastack console: stopped after {} s", (now_us() - started) / 1_000_000);
    Ok(())
}

async fn shutdown() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("a SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
