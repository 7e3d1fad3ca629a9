//! Server-sent events: every cluster summary that ingest changes goes out on a broadcast channel;
//! the fleet page gets the re-rendered tile, a cluster page a "changed" nudge, API clients the
//! summary as JSON. A client that falls behind gets "reload" (it missed updates).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream};
use tokio::sync::{broadcast, watch};

use super::now_us;
use super::pages::fleet::tile;
use super::server::Shared;
use super::store::ClusterSummary;

#[derive(Clone)]
pub struct Live {
    tx: broadcast::Sender<Arc<ClusterSummary>>,
    /// True once the server is shutting down: streams end, so that shutdown does not wait on them.
    closing: watch::Sender<bool>,
}

impl Default for Live {
    fn default() -> Self {
        Self::new()
    }
}

impl Live {
    pub fn new() -> Live {
        let (tx, _) = broadcast::channel(1024);
        let (closing, _) = watch::channel(false);
        Live { tx, closing }
    }

    pub fn publish(&self, changed: Vec<ClusterSummary>) {
        for c in changed {
            // No subscriber is not an error.
            let _ = self.tx.send(Arc::new(c));
        }
    }

    pub fn close(&self) {
        let _ = self.closing.send(true);
    }

    /// A stream of SSE events made by `render` from each change (None: skip it).
    fn stream<F>(&self, render: F) -> impl Stream<Item = Result<Event, Infallible>>
    where
        F: Fn(&ClusterSummary) -> Option<Event> + Send + 'static,
    {
        let rx = self.tx.subscribe();
        let closing = self.closing.subscribe();
        stream::unfold((rx, closing, render), |(mut rx, mut closing, render)| async move {
            loop {
                if *closing.borrow() {
                    return None;
                }
                let next = tokio::select! {
                    r = rx.recv() => r,
                    _ = closing.changed() => return None,
                };
                let event = match next {
                    Ok(c) => match render(&c) {
                        Some(e) => e,
                        None => continue,
                    },
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        Event::default().event("reload").data("missed updates")
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                };
                return Some((Ok(event), (rx, closing, render)));
            }
        })
    }
}

fn sse<S: Stream<Item = Result<Event, Infallible>> + Send + 'static>(s: S) -> Response {
    Sse::new(s).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response()
}

/// The fleet page's feed: `tile` events carrying the cluster's tile as HTML.
pub async fn fleet_stream(State(app): State<Shared>) -> Response {
    sse(app.live.stream(|c| Some(Event::default().event("tile").data(tile(c, now_us()).into_string()))))
}

/// A cluster page's feed: `changed` when that cluster changed.
pub async fn cluster_stream(State(app): State<Shared>, Path(name): Path<String>) -> Response {
    sse(app.live.stream(move |c| (c.name == name).then(|| Event::default().event("changed").data(c.id.to_string()))))
}

/// The API's feed: `cluster` events with the summary and its health as JSON.
pub async fn api_stream(State(app): State<Shared>) -> Response {
    sse(app.live.stream(|c| {
        let body = super::api::cluster_json(c, now_us());
        Some(Event::default().event("cluster").data(body.to_string()))
    }))
}
