//! The Server-Sent Events stream each page holds open.
//!
//! Events: `run` (the plan's meta, once per run), `idle` (interactive mode before the
//! first run), and `snap` (`{"reset", "state", "points"}`, about once a second). A page
//! gets the whole, downsampled series once, then only the points it has not seen; a
//! slow page skips frames rather than queueing them, because each frame carries the
//! full state.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use tokio::sync::watch;

use super::Hub;
use super::hub::{Frame, RunEntry};
use crate::report::page::view;

/// One page's position in the stream.
struct Conn {
    hub: Arc<Hub>,
    current: watch::Receiver<Option<Arc<RunEntry>>>,
    closed: watch::Receiver<bool>,
    frames: Option<watch::Receiver<Arc<Frame>>>,
    /// The epoch the page's series belongs to; `None` until it has a series.
    epoch: Option<u64>,
    /// The time of the last point the page has.
    last_t: f64,
}

pub(crate) async fn handler(
    State(hub): State<Arc<Hub>>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let mut current = hub.subscribe();
    current.mark_changed();
    let conn = Conn {
        closed: hub.closed(),
        hub,
        current,
        frames: None,
        epoch: None,
        last_t: -1.0,
    };
    let stream = futures_util::stream::unfold(conn, |mut conn| async move {
        let event = conn.next_event().await?;
        Some((Ok(event), conn))
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

impl Conn {
    async fn next_event(&mut self) -> Option<Event> {
        loop {
            if *self.closed.borrow() {
                return None;
            }
            if self.current.has_changed().unwrap_or(false) {
                let run = self.current.borrow_and_update().clone();
                return Some(match run {
                    Some(run) => {
                        let mut frames = run.frames.clone();
                        frames.mark_changed();
                        self.frames = Some(frames);
                        self.epoch = None;
                        self.last_t = -1.0;
                        Event::default().event("run").data(run.meta.as_str())
                    }
                    None => {
                        self.frames = None;
                        Event::default()
                            .event("idle")
                            .data(self.hub.idle_meta.as_str())
                    }
                });
            }
            let frames = self.frames.as_mut();
            tokio::select! {
                changed = self.current.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                    // Handled at the top of the loop.
                    self.current.mark_changed();
                }
                _ = self.closed.changed() => return None,
                changed = async {
                    match frames {
                        Some(f) => f.changed().await,
                        None => std::future::pending().await,
                    }
                } => {
                    if changed.is_err() {
                        // The run's producer finished after its final frame, which the
                        // page already got (watch keeps the last value).
                        self.frames = None;
                        continue;
                    }
                    let frame = match self.frames.as_mut() {
                        Some(f) => f.borrow_and_update().clone(),
                        None => continue,
                    };
                    return Some(self.snap_event(&frame));
                }
            }
        }
    }

    fn snap_event(&mut self, frame: &Frame) -> Event {
        let series = &frame.snapshot.series;
        let reset =
            self.epoch != Some(frame.epoch) || series.last().is_some_and(|p| p.t < self.last_t);
        let points = if reset {
            view::points_json(series, None)
        } else {
            view::points_json(series, Some(self.last_t))
        };
        self.epoch = Some(frame.epoch);
        if let Some(p) = series.last() {
            self.last_t = p.t;
        } else if reset {
            self.last_t = -1.0;
        }
        let data = format!(
            r#"{{"reset":{reset},"state":{},"points":{points}}}"#,
            frame.state
        );
        Event::default().event("snap").data(data)
    }
}
