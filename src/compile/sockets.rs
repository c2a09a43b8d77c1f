//! WebSocket and TCP steps: `ws`, `ws_send`, `ws_recv`, `ws_close`, `tcp` and
//! `tcp_send` become [`WsCall`]s and [`TcpCall`]s; the keys that belong to one kind
//! of step only are refused on the others; and every flow is checked to open a
//! connection before it uses one.

use std::time::Duration;

use base64::Engine as _;

use crate::plan::de::Sp;
use crate::plan::node::{Kind, Node};
use crate::plan::raw::{RawAwait, RawCall, RawFlow, RawStep};

use super::Compiler;
use super::flows::Scope;
use super::graph::{
    CallKind, FeederId, Payload, TcpAwait, TcpCall, Template, WsAwait, WsCall, split_addr,
};

/// The protocol a connection-using step needs open.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Link {
    Ws,
    Tcp,
}

impl Compiler<'_> {
    /// A WebSocket or TCP call, its default request name, and the `await.timeout`
    /// that replaces the step's timeout when given.
    pub(super) fn socket_call(
        &mut self,
        s: &RawStep,
        call: RawCall,
        scope: &Scope,
        feeders: &mut Vec<FeederId>,
        wait_timeout: &mut Option<Duration>,
    ) -> Option<(CallKind, String)> {
        let wait = |c: &mut Self, link: Link, t: &mut Option<Duration>| match &s.await_ {
            Some(a) => {
                *t = c.await_timeout(s, a);
                Some(c.wait(a, link))
            }
            None => None,
        };
        Some(match call {
            RawCall::Http { .. } | RawCall::Grpc { .. } => return None,
            RawCall::Ws(url) => {
                let (url, name) = self.ws_url(url, scope, feeders);
                let headers = self.merged_headers(s, scope, feeders);
                let subprotocols = s
                    .subprotocols
                    .iter()
                    .flat_map(|l| &l.value)
                    .map(|p| p.value.clone())
                    .collect();
                let call = WsCall::Connect {
                    url,
                    headers,
                    subprotocols,
                };
                (CallKind::Ws(call), name)
            }
            RawCall::WsSend(node) => {
                let payload = self.payload(node, scope, feeders)?;
                let wait = wait(self, Link::Ws, wait_timeout).map(Waits::ws);
                let call = WsCall::Send { payload, wait };
                (CallKind::Ws(call), "WS send".into())
            }
            RawCall::WsRecv(a) => {
                *wait_timeout = self.await_timeout(s, a);
                let wait = Waits::ws(self.wait(a, Link::Ws));
                (CallKind::Ws(WsCall::Recv(wait)), "WS recv".into())
            }
            RawCall::WsClose(code) => {
                let code = match u16::try_from(code.value) {
                    // RFC 6455 7.4: 1004-1006 and 1015 are never sent; 1000-2999
                    // beyond the defined codes are reserved.
                    Ok(c @ (1000..=1003 | 1007..=1014 | 3000..=4999)) => c,
                    _ => {
                        self.error_help(
                            code.pos,
                            format!("`{}` is not a close code a client may send", code.value),
                            "use 1000 (normal closure), another code of RFC 6455, or an application code from 3000 to 4999",
                        );
                        1000
                    }
                };
                (CallKind::Ws(WsCall::Close(code)), "WS close".into())
            }
            RawCall::Tcp(addr) => {
                let text = addr.value.trim();
                let name = format!("TCP {text}");
                let t = self.template(text, addr.pos, scope.captures, scope.later, feeders);
                if let Some(lit) = t.as_literal()
                    && split_addr(lit).is_none()
                {
                    self.error_help(
                        addr.pos,
                        format!("`{lit}` is not a `host:port` address"),
                        "write e.g. `tcp: 127.0.0.1:6379` or `tcp: \"{{ redis }}\"`",
                    );
                }
                let tls = s.tls.as_ref().is_some_and(|t| t.value);
                (CallKind::Tcp(TcpCall::Connect { addr: t, tls }), name)
            }
            RawCall::TcpSend(node) => {
                let payload = self.payload(node, scope, feeders)?;
                let wait = wait(self, Link::Tcp, wait_timeout).and_then(Waits::tcp);
                let call = TcpCall::Send { payload, wait };
                (CallKind::Tcp(call), "TCP send".into())
            }
        })
    }

    /// `ws: URL`: a relative URL joins the target; the scheme becomes `ws`/`wss` when
    /// the call is made (so a target's `http://` and a URL held in a variable work
    /// alike). The default name is `WS /path`.
    fn ws_url(
        &mut self,
        url: &Sp<String>,
        scope: &Scope,
        feeders: &mut Vec<FeederId>,
    ) -> (Template, String) {
        let text = url.value.trim();
        let name = super::flows::default_name(&http::Method::GET, text).replacen("GET", "WS", 1);
        if text.starts_with("ws://") || text.starts_with("wss://") {
            let t = self.template(text, url.pos, scope.captures, scope.later, feeders);
            if let Some(lit) = t.as_literal()
                && url::Url::parse(lit).is_err()
            {
                self.error(url.pos, format!("`{lit}` is not a valid URL"));
            }
            return (t, name);
        }
        (self.url(url, scope, feeders), name)
    }

    /// What `ws_send` or `tcp_send` sends: a string is text; else one of `text`,
    /// `json` or `binary` (base64, decoded here so a typo is a plan error).
    fn payload(
        &mut self,
        node: &Node,
        scope: &Scope,
        feeders: &mut Vec<FeederId>,
    ) -> Option<Payload> {
        const HELP: &str =
            "write a string, or one of `{ text: ... }`, `{ json: ... }`, `{ binary: <base64> }`";
        let (key, value) = match &node.kind {
            Kind::Str(s) => {
                let t = self.template(s, node.pos, scope.captures, scope.later, feeders);
                return Some(Payload::Text(t));
            }
            Kind::Map(entries) if entries.len() == 1 => (&entries[0].0, &entries[0].1),
            Kind::Map(entries) if entries.len() > 1 => {
                self.error_help(entries[1].0.pos, "a message has one payload", HELP);
                return None;
            }
            other => {
                self.error_help(
                    node.pos,
                    format!("a payload is a string or a map, not {}", other.describe()),
                    HELP,
                );
                return None;
            }
        };
        match (key.name.as_str(), &value.kind) {
            ("json", _) => Some(Payload::Json(self.json_template(value, scope, feeders))),
            ("text", Kind::Str(s)) => {
                let t = self.template(s, value.pos, scope.captures, scope.later, feeders);
                Some(Payload::Text(t))
            }
            ("binary", Kind::Str(s)) => {
                match base64::engine::general_purpose::STANDARD.decode(s.trim()) {
                    Ok(bytes) => Some(Payload::Binary(bytes)),
                    Err(e) => {
                        self.error_help(
                            value.pos,
                            format!("`binary` is not valid base64: {e}"),
                            "binary payloads are written in standard base64, e.g. `AAEC/w==`",
                        );
                        None
                    }
                }
            }
            ("text" | "binary", other) => {
                self.error(
                    value.pos,
                    format!("`{}` takes a string, not {}", key.name, other.describe()),
                );
                None
            }
            (k, _) => {
                let help = match crate::plan::de::closest(k, ["text", "json", "binary"].into_iter())
                {
                    Some(c) => format!("did you mean `{c}`?"),
                    None => HELP.into(),
                };
                self.error_help(key.pos, format!("unknown payload `{k}`"), help);
                None
            }
        }
    }

    /// `await.timeout`, when given; a step cannot also set its own `timeout`.
    fn await_timeout(&mut self, s: &RawStep, a: &Sp<RawAwait>) -> Option<Duration> {
        let t = a.value.timeout.as_ref()?;
        if let Some(own) = &s.timeout {
            self.error_help(
                own.pos,
                "`timeout` is given twice: on the step and in its `await`",
                "keep one; `await.timeout` bounds the wait",
            );
        }
        self.duration(t)
    }

    /// `await` (or `ws_recv`): `match` for WebSocket, `until` or `bytes` for TCP.
    fn wait(&mut self, a: &Sp<RawAwait>, link: Link) -> Waits {
        let w = &a.value;
        let mut out = Waits::default();
        match link {
            Link::Ws => {
                for (key, pos) in [
                    ("until", w.until.as_ref().map(|u| u.pos)),
                    ("bytes", w.bytes.as_ref().map(|b| b.pos)),
                ] {
                    if let Some(pos) = pos {
                        self.error_help(
                            pos,
                            format!("`{key}` is for TCP; a WebSocket step awaits a message"),
                            "use `match: { $.path: value }` to pick the message",
                        );
                    }
                }
                for (k, v) in w.match_.iter().flat_map(|m| &m.0) {
                    let path = self.json_path(k);
                    if let (Some(path), Some((m, _))) = (path, self.matcher(&v.value)) {
                        out.matches.push((path, m));
                    }
                }
            }
            Link::Tcp => {
                if let Some((k, _)) = w.match_.as_ref().and_then(|m| m.0.first()) {
                    self.error_help(
                        k.pos,
                        "`match` is for WebSocket messages; TCP reads bytes",
                        "use `until: \"\\r\\n\"` or `bytes: N`, and `expect.body` to check them",
                    );
                }
                out.tcp = match (&w.until, &w.bytes) {
                    (Some(u), Some(b)) => {
                        self.error(b.pos, "`await` takes `until` or `bytes`, not both");
                        let _ = u;
                        None
                    }
                    (Some(u), None) if u.value.is_empty() => {
                        self.error(u.pos, "`until` cannot be empty");
                        None
                    }
                    (Some(u), None) => Some(TcpAwait::Until(u.value.clone().into_bytes())),
                    (None, Some(b)) => match usize::try_from(b.value) {
                        Ok(n) if n > 0 => Some(TcpAwait::Bytes(n)),
                        _ => {
                            self.error(b.pos, "`bytes` must be a whole number of at least 1");
                            None
                        }
                    },
                    (None, None) => {
                        self.error_help(
                            a.pos,
                            "a TCP `await` needs `until` or `bytes`",
                            "e.g. `await: { until: \"\\r\\n\", timeout: 1s }`",
                        );
                        None
                    }
                };
            }
        }
        out
    }

    /// Refuses the keys that do nothing on this kind of step, where they are written.
    pub(super) fn socket_keys(&mut self, s: &RawStep, call: &RawCall) {
        let key = call.key();
        let http = matches!(call, RawCall::Http { .. });
        // A gRPC step checks its own request keys (`compile::grpc`), and has a status.
        let grpc = matches!(call, RawCall::Grpc { .. });
        let sends = matches!(call, RawCall::WsSend(_) | RawCall::TcpSend(_));
        let checks = !matches!(call, RawCall::Ws(_) | RawCall::Tcp(_) | RawCall::WsClose(_));
        let misplaced = [
            (
                "await",
                s.await_.as_ref().map(|a| a.pos),
                sends,
                "on `ws_send` or `tcp_send`",
            ),
            (
                "subprotocols",
                s.subprotocols.as_ref().map(|p| p.pos),
                matches!(call, RawCall::Ws(_)),
                "on a `ws` step",
            ),
            (
                "tls",
                s.tls.as_ref().map(|t| t.pos),
                matches!(call, RawCall::Tcp(_)),
                "on a `tcp` step",
            ),
            (
                "headers",
                s.headers
                    .as_ref()
                    .and_then(|h| h.0.first())
                    .map(|(k, _)| k.pos),
                http || grpc || matches!(call, RawCall::Ws(_)),
                "on an HTTP request or a `ws` step",
            ),
            (
                "query",
                s.query
                    .as_ref()
                    .and_then(|q| q.0.first())
                    .map(|(k, _)| k.pos),
                http || grpc,
                "on an HTTP request",
            ),
            (
                "json",
                s.json.as_ref().map(|j| j.pos),
                http || grpc,
                "on an HTTP request (`ws_send` takes `{ json: ... }`)",
            ),
            (
                "form",
                s.form
                    .as_ref()
                    .and_then(|f| f.0.first())
                    .map(|(k, _)| k.pos),
                http || grpc,
                "on an HTTP request",
            ),
            (
                "body",
                s.body.as_ref().map(|b| b.pos),
                http || grpc,
                "on an HTTP request",
            ),
        ];
        for (name, pos, allowed, belongs) in misplaced {
            if let Some(pos) = pos
                && !allowed
            {
                self.error_help(
                    pos,
                    format!("`{name}` does nothing on a `{key}` step"),
                    format!("`{name}` belongs {belongs}"),
                );
            }
        }
        if http || grpc {
            return;
        }
        let expect = s.expect.as_ref().map(|e| &e.value);
        let http_checks = [
            (
                "status",
                expect.and_then(|e| e.status.as_ref()).map(|n| n.pos),
            ),
            (
                "headers",
                expect
                    .and_then(|e| e.headers.as_ref())
                    .and_then(|h| h.0.first())
                    .map(|(k, _)| k.pos),
            ),
        ];
        for (name, pos) in http_checks {
            if let Some(pos) = pos {
                self.error_help(
                    pos,
                    format!("`expect.{name}` is for HTTP; a `{key}` step has none"),
                    "check what was received with `expect.json`, `expect.body` or `expect.latency`",
                );
            }
        }
        if !checks && let Some(e) = &s.expect {
            let answer = (e.value.json.is_some() || e.value.body.is_some()).then_some(e.pos);
            if let Some(pos) = answer {
                self.error_help(
                    pos,
                    format!("a `{key}` step receives nothing to check"),
                    "check replies on the `ws_send`/`tcp_send` step that awaits them",
                );
            }
        }
        if let Some((k, _)) = s.capture.as_ref().and_then(|c| c.0.first())
            && !checks
        {
            self.error_help(
                k.pos,
                format!("a `{key}` step receives nothing to capture"),
                "capture on the `ws_send`/`tcp_send` step that awaits a reply",
            );
        }
    }

    /// Each flow opens a connection before it uses one: a `ws_send`, `ws_recv` or
    /// `ws_close` needs a `ws` step before it (in `setup`, or earlier in the same
    /// part), and a `tcp_send` a `tcp` step; `ws_close` closes the connection. The
    /// parts are read in the order a user runs them: `setup`, `steps`, `teardown`.
    pub(super) fn connections_in_order(&mut self, f: &RawFlow) {
        let mut ws_open = false;
        let mut tcp_open = false;
        let parts = f
            .setup
            .iter()
            .flatten()
            .chain(&f.steps.value)
            .chain(f.teardown.iter().flatten());
        for step in parts {
            let s = &step.value;
            if s.think.is_some() {
                continue;
            }
            for call in s.calls() {
                let (open, needs) = match call {
                    RawCall::Ws(_) => {
                        ws_open = true;
                        continue;
                    }
                    RawCall::Tcp(_) => {
                        tcp_open = true;
                        continue;
                    }
                    RawCall::WsSend(_) | RawCall::WsRecv(_) => (ws_open, "ws"),
                    RawCall::WsClose(_) => (std::mem::replace(&mut ws_open, false), "ws"),
                    RawCall::TcpSend(_) => (tcp_open, "tcp"),
                    RawCall::Http { .. } | RawCall::Grpc { .. } => continue,
                };
                if !open {
                    let key = call.key();
                    let example = if needs == "ws" {
                        "`- ws: /path`"
                    } else {
                        "`- tcp: host:port`"
                    };
                    self.error_help(
                        call.pos(),
                        format!(
                            "`{key}` without a connection: no `{needs}` step opens one before it"
                        ),
                        format!("open it first with {example}, in `setup` or earlier in the steps"),
                    );
                }
            }
        }
    }
}

/// What a wait compiles to, before it is known whether the step is WebSocket or TCP.
#[derive(Default)]
struct Waits {
    matches: Vec<(super::jsonpath::JsonPath, super::graph::Matcher)>,
    tcp: Option<TcpAwait>,
}

impl Waits {
    fn ws(self) -> WsAwait {
        WsAwait {
            matches: self.matches,
        }
    }

    fn tcp(self) -> Option<TcpAwait> {
        self.tcp
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use crate::compile::graph::{CallKind, Payload, Step, TcpAwait, TcpCall, WsCall};
    use crate::compile::{CompileOptions, compile_str};

    const PLAN: &str = r#"
name: t
target: https://example.test/api
load: { users: 1, duration: 1s }
flows:
  - name: f
    steps:
      - ws: /chat?room=1
        subprotocols: [chat.v1]
      - ws_send: { binary: AAEC }
        await: { match: { $.type: pong }, timeout: 3s }
      - ws_recv: {}
      - ws_close: 1000
      - tcp: "localhost:6379"
        tls: true
      - tcp_send: "PING\r\n"
        await: { until: "\r\n" }
      - tcp_send: { text: "x" }
        await: { bytes: 4 }
"#;

    #[test]
    fn socket_steps_compile_to_their_calls_names_and_types() {
        let plan = compile_str(PLAN, Path::new("p.yaml"), &CompileOptions::default()).unwrap();
        let calls: Vec<_> = plan.flows[0]
            .steps
            .iter()
            .map(|s| match s {
                Step::Call(c) => c,
                _ => panic!("only calls"),
            })
            .collect();
        let names: Vec<(&str, &str)> = plan
            .requests
            .iter()
            .map(|r| (r.name.as_str(), r.call.label()))
            .collect();
        assert_eq!(
            names,
            [
                ("WS /chat", "WS"),
                ("WS send", "WS"),
                ("WS recv", "WS"),
                ("WS close", "WS"),
                ("TCP localhost:6379", "TCP"),
                ("TCP send", "TCP"),
            ]
        );
        let CallKind::Ws(WsCall::Connect {
            url, subprotocols, ..
        }) = &calls[0].kind
        else {
            panic!("{:?}", calls[0].kind)
        };
        assert_eq!(
            url.as_literal(),
            Some("https://example.test/api/chat?room=1")
        );
        assert_eq!(subprotocols, &["chat.v1"]);
        let CallKind::Ws(WsCall::Send {
            payload: Payload::Binary(bytes),
            wait: Some(wait),
        }) = &calls[1].kind
        else {
            panic!("{:?}", calls[1].kind)
        };
        assert_eq!(bytes, &[0, 1, 2]);
        assert_eq!(wait.matches.len(), 1);
        // `await.timeout` bounds the step.
        assert_eq!(calls[1].timeout, Duration::from_secs(3));
        assert!(matches!(&calls[2].kind, CallKind::Ws(WsCall::Recv(w)) if w.matches.is_empty()));
        assert!(matches!(calls[3].kind, CallKind::Ws(WsCall::Close(1000))));
        assert!(matches!(
            &calls[4].kind,
            CallKind::Tcp(TcpCall::Connect { tls: true, .. })
        ));
        let CallKind::Tcp(TcpCall::Send { wait, .. }) = &calls[5].kind else {
            panic!("{:?}", calls[5].kind)
        };
        assert_eq!(wait, &Some(TcpAwait::Until(b"\r\n".to_vec())));
        let CallKind::Tcp(TcpCall::Send { wait, .. }) = &calls[6].kind else {
            panic!("{:?}", calls[6].kind)
        };
        assert_eq!(wait, &Some(TcpAwait::Bytes(4)));
    }

    #[test]
    fn addresses_split_into_host_and_port() {
        use super::split_addr;
        assert_eq!(split_addr("127.0.0.1:6379"), Some(("127.0.0.1", 6379)));
        assert_eq!(split_addr("[::1]:80"), Some(("::1", 80)));
        assert_eq!(split_addr("redis:x"), None);
        assert_eq!(split_addr(":80"), None);
        assert_eq!(split_addr("host"), None);
    }
}
