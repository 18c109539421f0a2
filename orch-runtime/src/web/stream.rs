//! Server-sent events: a run's events and log lines as they are recorded (resuming after
//! `Last-Event-ID` without duplicates), and every run's events, which pages use to refresh
//! themselves. Both tail the store by id, so runs in other processes (the daemon's children)
//! stream like runs in this one; this process's own runs also wake the tail at once through
//! the instance's feed.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::response::sse::{Event, KeepAlive, Sse};
use serde::Deserialize;
use tokio::sync::mpsc;

use super::data::{event_view, log_line};
use super::{Ui, WebError};
use crate::storage::LogPage;

/// How often a stream looks at the store when nothing woke it.
const POLL: Duration = Duration::from_millis(40);
/// The shortest time between two looks at the store.
const MIN_GAP: Duration = Duration::from_millis(10);
/// At most this many rows per look.
const BATCH: usize = 1_000;

/// A channel's receiving end as a stream of events.
pub(crate) struct Events(mpsc::Receiver<Event>);

impl futures_core::Stream for Events {
    type Item = Result<Event, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx).map(|e| e.map(Ok))
    }
}

/// Where a run's stream resumes: the last event's sequence number and the last log line's
/// id, written `E-L` as each message's id.
fn resume_point(headers: &HeaderMap, after: Option<&str>) -> (u64, u64) {
    let text = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .or(after);
    text.and_then(|t| t.split_once('-'))
        .and_then(|(e, l)| Some((e.parse().ok()?, l.parse().ok()?)))
        .unwrap_or((0, 0))
}

#[derive(Deserialize)]
pub(crate) struct StreamQuery {
    /// Resume point as `E-L` (for clients that cannot set `Last-Event-ID`).
    after: Option<String>,
    /// Only log lines after the latest ones (the page already shows a window of them).
    tail: Option<bool>,
}

/// Waits until something woke the stream or `POLL` passed; `false` when the server stops or
/// the client went away (so a closed page stops costing store reads at once, not at the next
/// event).
async fn wait(
    ui: &Ui,
    feed: &mut tokio::sync::broadcast::Receiver<crate::storage::EventRecord>,
    tx: &mpsc::Sender<Event>,
) -> bool {
    let woke = tokio::select! {
        () = ui.stop.cancelled() => false,
        () = tx.closed() => false,
        _ = feed.recv() => true,
        () = tokio::time::sleep(POLL) => true,
    };
    // However busy the feed, at most one look at the store per `MIN_GAP`.
    if woke {
        tokio::time::sleep(MIN_GAP).await;
    }
    woke && !tx.is_closed()
}

/// `GET /api/runs/{id}/stream`: events `event` (an event of the run), `log` (a log line) and
/// `end` (the run ended and everything was sent).
pub(crate) async fn run_stream(
    State(ui): State<Arc<Ui>>,
    Path(id): Path<String>,
    Query(query): Query<StreamQuery>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, WebError> {
    let run = {
        let ui = Arc::clone(&ui);
        tokio::task::spawn_blocking(move || ui.instance.storage().run(&id))
            .await
            .map_err(|e| WebError::Serve(std::io::Error::other(e.to_string())))??
    };
    let (mut seq, mut log_id) = resume_point(&headers, query.after.as_deref());
    if query.tail == Some(true) && log_id == 0 {
        let store = Arc::clone(ui.instance.storage());
        let run_id = run.id.to_string();
        log_id = tokio::task::spawn_blocking(move || {
            store.logs_page(
                &run_id,
                LogPage::Before {
                    id: u64::MAX,
                    limit: 1,
                },
            )
        })
        .await
        .map_err(|e| WebError::Serve(std::io::Error::other(e.to_string())))??
        .first()
        .map_or(0, |(id, _)| *id);
    }
    let (tx, rx) = mpsc::channel(256);
    let mut feed = ui.instance.subscribe();
    tokio::spawn(async move {
        let run_id = run.id.to_string();
        loop {
            let store = Arc::clone(ui.instance.storage());
            let id = run_id.clone();
            let read = tokio::task::spawn_blocking(move || {
                // The status first: a run that had ended before the reads has nothing after
                // them, so the stream can end once they are drained. (Read last, the writer's
                // final lines could land between the reads and the status, and be lost.)
                let ended = store.run(&id)?.status.is_finished();
                let events = store.events_after(&id, seq, BATCH)?;
                let logs = store.logs_page(
                    &id,
                    LogPage::After {
                        id: log_id,
                        limit: BATCH,
                    },
                )?;
                Ok::<_, crate::storage::StorageError>((events, logs, ended))
            })
            .await;
            let Ok(Ok((events, logs, ended))) = read else {
                return;
            };
            let drained = events.len() < BATCH && logs.len() < BATCH;
            for e in &events {
                seq = e.seq.unwrap_or(seq).max(seq);
                let data = serde_json::to_string(&event_view(e)).unwrap_or_default();
                let event = Event::default()
                    .event("event")
                    .id(format!("{seq}-{log_id}"))
                    .data(data);
                if tx.send(event).await.is_err() {
                    return;
                }
            }
            for line in logs {
                log_id = line.0.max(log_id);
                let data = serde_json::to_string(&log_line(line)).unwrap_or_default();
                let event = Event::default()
                    .event("log")
                    .id(format!("{seq}-{log_id}"))
                    .data(data);
                if tx.send(event).await.is_err() {
                    return;
                }
            }
            if ended && drained {
                let _ = tx.send(Event::default().event("end").data("{}")).await;
                return;
            }
            if drained && !wait(&ui, &mut feed, &tx).await {
                return;
            }
        }
    });
    Ok(Sse::new(Events(rx)).keep_alive(KeepAlive::default()))
}

/// `GET /api/events`: `change` events (`{seq, run_id, asset, kind}`) for every event recorded
/// from now on (or after `Last-Event-ID`), so open pages refresh what changed.
pub(crate) async fn all_events(
    State(ui): State<Arc<Ui>>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, WebError> {
    let store = Arc::clone(ui.instance.storage());
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut seq = match resume {
        Some(seq) => seq,
        None => tokio::task::spawn_blocking(move || store.latest_seq())
            .await
            .map_err(|e| WebError::Serve(std::io::Error::other(e.to_string())))??,
    };
    let (tx, rx) = mpsc::channel(256);
    let mut feed = ui.instance.subscribe();
    tokio::spawn(async move {
        loop {
            let store = Arc::clone(ui.instance.storage());
            let after = seq;
            let read = tokio::task::spawn_blocking(move || store.events_since(after, BATCH)).await;
            let Ok(Ok(events)) = read else { return };
            let drained = events.len() < BATCH;
            for e in events {
                seq = e.seq.unwrap_or(seq).max(seq);
                let data = serde_json::json!({
                    "seq": seq,
                    "run_id": e.run_id.to_string(),
                    "asset": e.asset.as_ref().map(ToString::to_string),
                    "kind": e.kind.as_str(),
                });
                let event = Event::default()
                    .event("change")
                    .id(seq.to_string())
                    .data(data.to_string());
                if tx.send(event).await.is_err() {
                    return;
                }
            }
            if drained && !wait(&ui, &mut feed, &tx).await {
                return;
            }
        }
    });
    Ok(Sse::new(Events(rx)).keep_alive(KeepAlive::default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_points_come_from_the_header_first() {
        let mut h = HeaderMap::new();
        assert_eq!(resume_point(&h, None), (0, 0));
        assert_eq!(resume_point(&h, Some("12-40")), (12, 40));
        h.insert("last-event-id", "7-3".parse().unwrap());
        assert_eq!(resume_point(&h, Some("12-40")), (7, 3));
        let mut bad = HeaderMap::new();
        bad.insert("last-event-id", "x".parse().unwrap());
        assert_eq!(resume_point(&bad, None), (0, 0));
    }
}
