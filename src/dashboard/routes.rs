//! The dashboard's HTTP routes: the page and its assets, the stream, the controls and
//! the downloads. Every route sits behind [`super::auth::guard`].

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::{Hub, RunRequest, auth, downloads, stream};
use crate::compile::graph::MAX_USERS;
use crate::engine::control::Control;
use crate::report::page;

pub(crate) fn router(hub: Arc<Hub>) -> Router {
    Router::new()
        .route("/", get(|| async { Html(page::live()) }))
        .route("/assets/{file}", get(asset))
        .route("/api/stream", get(stream::handler))
        .route("/api/control", post(control))
        .route("/api/start", post(start))
        .route("/api/report/{kind}", get(report))
        .route("/api/workers", get(workers))
        .layer(axum::middleware::from_fn_with_state(
            hub.clone(),
            auth::guard,
        ))
        .with_state(hub)
}

/// The workers table of a run on many machines (empty otherwise): state, users,
/// requests/s, CPU and generator lag of each.
async fn workers(State(hub): State<Arc<Hub>>) -> Response {
    let rows: Vec<serde_json::Value> = hub
        .workers()
        .into_iter()
        .map(|w| {
            serde_json::json!({
                "name": w.name,
                "address": w.address,
                "threads": w.threads,
                "state": w.state.name(),
                "users": w.status.users,
                "rps": w.status.requests_per_s,
                "cpu_percent": w.status.cpu_percent,
                "lag_p99_ms": w.status.lag_p99_ms,
                "saturated": w.status.saturated,
                "lost_at_s": w.lost.as_ref().map(|(at, _)| *at),
                "error": w.lost.map(|(_, why)| why),
            })
        })
        .collect();
    axum::Json(serde_json::json!({ "workers": rows })).into_response()
}

async fn asset(Path(file): Path<String>) -> Response {
    match page::asset(&file) {
        Some((body, mime)) => ([(header::CONTENT_TYPE, mime)], body).into_response(),
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}

/// A control action from the page.
#[derive(Debug, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
enum Action {
    Users {
        users: u32,
        #[serde(default)]
        spawn_rate: Option<f64>,
    },
    Rate {
        rate: f64,
    },
    Stop,
    Reset,
}

fn bad_request(message: impl Into<String>) -> Response {
    (StatusCode::BAD_REQUEST, message.into()).into_response()
}

async fn control(State(hub): State<Arc<Hub>>, body: axum::body::Bytes) -> Response {
    let action: Action = match serde_json::from_slice(&body) {
        Ok(a) => a,
        Err(e) => return bad_request(format!("invalid control request: {e}")),
    };
    let message = match action {
        Action::Users { users, spawn_rate } => {
            if users > MAX_USERS {
                return bad_request(format!("users must be at most {MAX_USERS}"));
            }
            if spawn_rate.is_some_and(|r| !r.is_finite() || r <= 0.0) {
                return bad_request("spawn rate must be more than 0 (or empty: all at once)");
            }
            Control::SetUsers { users, spawn_rate }
        }
        Action::Rate { rate } => {
            if !rate.is_finite() || rate < 0.0 {
                return bad_request("arrival rate must be 0 or more");
            }
            Control::SetRate { rate }
        }
        Action::Stop => Control::Stop,
        Action::Reset => Control::ResetStats,
    };
    let Some(run) = hub.current() else {
        return (StatusCode::CONFLICT, "no run has started").into_response();
    };
    if !run.is_running() {
        return (StatusCode::CONFLICT, "the run has ended").into_response();
    }
    match run.control.send(message) {
        Ok(()) => (StatusCode::ACCEPTED, "ok").into_response(),
        Err(_) => (StatusCode::CONFLICT, "the run has ended").into_response(),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StartRequest {
    #[serde(default)]
    users: Option<u32>,
    #[serde(default)]
    spawn_rate: Option<f64>,
    #[serde(default)]
    rate: Option<f64>,
    /// `30s`, `1m30s`...; empty or absent: the plan's own.
    #[serde(default)]
    duration: Option<String>,
}

async fn start(State(hub): State<Arc<Hub>>, body: axum::body::Bytes) -> Response {
    let Some(launcher) = hub.launcher.clone() else {
        return (
            StatusCode::CONFLICT,
            "this dashboard shows one run; start runs with `swarm ui`",
        )
            .into_response();
    };
    let req: StartRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return bad_request(format!("invalid start request: {e}")),
    };
    let duration = match req.duration.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(d) => match crate::compile::units::parse_duration(d) {
            Ok(d) if !d.is_zero() => Some(d),
            _ => return bad_request(format!("invalid duration `{d}`: use e.g. 30s, 2m, 1h30m")),
        },
    };
    if req.spawn_rate.is_some_and(|r| !r.is_finite() || r <= 0.0)
        || req.rate.is_some_and(|r| !r.is_finite() || r < 0.0)
    {
        return bad_request("rates must be positive numbers");
    }
    if hub.current().is_some_and(|r| r.is_running()) {
        return (
            StatusCode::CONFLICT,
            "a run is already going on; stop it first",
        )
            .into_response();
    }
    let request = RunRequest {
        users: req.users,
        spawn_rate: req.spawn_rate,
        rate: req.rate,
        duration,
    };
    match launcher.launch(request) {
        Ok(run) => {
            let entry = hub.add_run(run);
            (StatusCode::ACCEPTED, format!("run {} started", entry.id)).into_response()
        }
        Err(message) => (StatusCode::UNPROCESSABLE_ENTITY, message).into_response(),
    }
}

async fn report(
    State(hub): State<Arc<Hub>>,
    Path(kind): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let run = match q.get("run").and_then(|r| r.parse::<u32>().ok()) {
        Some(id) => hub.run(id),
        None => hub.current(),
    };
    let Some(run) = run else {
        return (StatusCode::NOT_FOUND, "no such run").into_response();
    };
    let frame = run.latest();
    let workers = hub.worker_reports();
    match downloads::render(
        &kind,
        &run.plan,
        &frame.snapshot,
        frame.started,
        run.id,
        &workers,
    ) {
        Some(d) => (
            [
                (header::CONTENT_TYPE, d.mime.to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{}\"", d.filename),
                ),
            ],
            d.body,
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            "unknown report kind: use html, json, junit or csv",
        )
            .into_response(),
    }
}
