//! TEMPORARY stand-in for the request helper's pipeline (branch `request`): a bare
//! HTTP/1.1 client over one keep-alive TCP connection per user, enough for the
//! engine's tests. Reverted before merging the real one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::compile::graph::{CompiledPlan, RequestStep, Segment, Template};
use crate::engine::http::HttpShared;
use crate::metrics::failure::FailureKind;

pub struct VuContext {
    pub user: u32,
    pub iteration: u64,
    pub slots: Vec<Option<serde_json::Value>>,
    pub rows: Vec<Option<Arc<[String]>>>,
    conn: Option<TcpStream>,
    buf: Vec<u8>,
}

impl VuContext {
    pub fn new(user: u32, plan: &CompiledPlan, _http: &HttpShared) -> VuContext {
        VuContext {
            user,
            iteration: 0,
            slots: vec![None; plan.slots.len()],
            rows: vec![None; plan.feeders.len()],
            conn: None,
            buf: Vec::new(),
        }
    }
}

pub struct Outcome {
    pub latency: Duration,
    pub bytes: u64,
    pub result: Result<(), FailureKind>,
}

fn render(t: &Template, ctx: &VuContext) -> String {
    let mut s = String::new();
    for seg in &t.segments {
        match seg {
            Segment::Literal(l) => s.push_str(l),
            Segment::Feeder { feeder, column } => {
                if let Some(Some(row)) = ctx.rows.get(feeder.0 as usize) {
                    s.push_str(row.get(*column as usize).map_or("", |c| c.as_str()));
                }
            }
            Segment::Func(crate::compile::graph::Func::User) => s.push_str(&ctx.user.to_string()),
            Segment::Func(crate::compile::graph::Func::Iteration) => {
                s.push_str(&ctx.iteration.to_string())
            }
            _ => {}
        }
    }
    s
}

pub async fn execute(
    step: &RequestStep,
    ctx: &mut VuContext,
    http: &HttpShared,
    start: Instant,
) -> Outcome {
    let url = render(&step.url, ctx);
    let result = tokio::time::timeout(step.timeout, exchange(step, &url, ctx, http)).await;
    let (bytes, result) = match result {
        Ok(Ok((status, bytes))) if status >= 400 => (bytes, Err(FailureKind::Status(status))),
        Ok(Ok((_, bytes))) => (bytes, Ok(())),
        Ok(Err(kind)) => {
            ctx.conn = None;
            (0, Err(kind))
        }
        Err(_) => {
            ctx.conn = None;
            (0, Err(FailureKind::Timeout))
        }
    };
    Outcome {
        latency: start.elapsed(),
        bytes,
        result,
    }
}

async fn exchange(
    step: &RequestStep,
    url: &str,
    ctx: &mut VuContext,
    http: &HttpShared,
) -> Result<(u16, u64), FailureKind> {
    let rest = url.strip_prefix("http://").ok_or(FailureKind::Protocol)?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if ctx.conn.is_none() {
        let conn = TcpStream::connect(host).await.map_err(|e| match e.kind() {
            std::io::ErrorKind::ConnectionRefused => FailureKind::Refused,
            _ => FailureKind::Connect,
        })?;
        let _ = conn.set_nodelay(true);
        ctx.conn = Some(conn);
    }
    let conn = ctx.conn.as_mut().ok_or(FailureKind::Connect)?;
    let req = format!(
        "{} {path} HTTP/1.1\r\nhost: {host}\r\ncontent-length: 0\r\n\r\n",
        step.method
    );
    conn.write_all(req.as_bytes())
        .await
        .map_err(|_| FailureKind::Reset)?;
    ctx.buf.clear();
    loop {
        let mut chunk = [0u8; 4096];
        let n = conn
            .read(&mut chunk)
            .await
            .map_err(|_| FailureKind::Reset)?;
        if n == 0 {
            return Err(FailureKind::Reset);
        }
        ctx.buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut resp = httparse::Response::new(&mut headers);
        match resp.parse(&ctx.buf) {
            Ok(httparse::Status::Complete(head)) => {
                let len: usize = resp
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                    .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse().ok())
                    .unwrap_or(0);
                if len > http.body_limit {
                    return Err(FailureKind::BodyTooLarge);
                }
                let status = resp.code.unwrap_or(0);
                while ctx.buf.len() < head + len {
                    let n = conn
                        .read(&mut chunk)
                        .await
                        .map_err(|_| FailureKind::Reset)?;
                    if n == 0 {
                        return Err(FailureKind::Reset);
                    }
                    ctx.buf.extend_from_slice(&chunk[..n]);
                }
                return Ok((status, len as u64));
            }
            Ok(httparse::Status::Partial) => continue,
            Err(_) => return Err(FailureKind::Protocol),
        }
    }
}
