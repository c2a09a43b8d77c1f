//! The request pipeline against real loopback servers: rendering, cookies, captures,
//! expectations, redirects and every transport failure kind.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query};
use axum::response::{IntoResponse, Redirect};
use axum::routing::{any, get, post};
use http::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderName, Method, StatusCode};
use serde_json::{Value, json};
use swarm::compile::graph::*;
use swarm::engine::config::EngineConfig;
use swarm::engine::http::HttpShared;
use swarm::engine::request::{Outcome, VuContext, execute};
use swarm::metrics::failure::FailureKind;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const T: Duration = Duration::from_secs(5);

/// Serves `app` on a free loopback port.
async fn serve(app: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await;
    });
    addr
}

/// The test target: a small API exercising every feature of the pipeline.
fn app(hits: Arc<AtomicUsize>) -> Router {
    Router::new()
        .route("/hello", get(|| async { "hello world" }))
        .route(
            "/set",
            get(|Query(q): Query<HashMap<String, String>>| async move {
                let user = q.get("u").cloned().unwrap_or_default();
                ([(SET_COOKIE, format!("session={user}; Path=/"))], "set")
            }),
        )
        .route(
            "/me",
            get(|headers: HeaderMap| async move { header(&headers, COOKIE) }),
        )
        .route(
            "/login",
            post(|axum::Json(v): axum::Json<Value>| async move {
                match (v["user"].as_str(), v["password"].as_str()) {
                    (Some(user), Some(pw)) if !pw.is_empty() => (
                        StatusCode::OK,
                        axum::Json(json!({ "token": format!("T-{user}") })),
                    ),
                    (Some(_), Some(_)) => (StatusCode::OK, axum::Json(json!({ "error": "no" }))),
                    _ => (StatusCode::BAD_REQUEST, axum::Json(json!({}))),
                }
            }),
        )
        .route(
            "/cart",
            get(|headers: HeaderMap| async move {
                if header(&headers, AUTHORIZATION) == "Bearer T-alice" {
                    (StatusCode::OK, "cart")
                } else {
                    (StatusCode::UNAUTHORIZED, "no")
                }
            }),
        )
        .route(
            "/status/{code}",
            get(|Path(code): Path<u16>| async move {
                StatusCode::from_u16(code).unwrap_or(StatusCode::IM_A_TEAPOT)
            }),
        )
        .route(
            "/echo",
            any(
                |method: Method, uri: http::Uri, headers: HeaderMap, body: Bytes| async move {
                    axum::Json(json!({
                        "method": method.as_str(),
                        "query": uri.query(),
                        "content_type": header(&headers, CONTENT_TYPE),
                        "x_token": header(&headers, HeaderName::from_static("x-token")),
                        "user_agent": header(&headers, http::header::USER_AGENT),
                        "body": String::from_utf8_lossy(&body),
                    }))
                },
            ),
        )
        .route(
            "/page",
            get(|| async {
                (
                    [("etag", "\"v7\"")],
                    r#"<form><input name="csrf" value="c-123"></form>"#,
                )
            }),
        )
        .route(
            "/r/{n}",
            get(|Path(n): Path<u32>| async move {
                if n == 0 {
                    "done".into_response()
                } else {
                    Redirect::to(&format!("/r/{}", n - 1)).into_response()
                }
            }),
        )
        .route("/big", get(|| async { vec![b'x'; 2 * 1024 * 1024] }))
        .route(
            "/port",
            get(
                |ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.port().to_string() },
            ),
        )
        .route(
            "/counted",
            get(move || {
                hits.fetch_add(1, Ordering::SeqCst);
                async { "counted" }
            }),
        )
}

fn header(headers: &HeaderMap, name: HeaderName) -> String {
    headers
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default()
}

/// A raw TCP target that runs `behave` on each accepted connection.
async fn raw<F, Fut>(behave: F) -> SocketAddr
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(behave(stream));
        }
    });
    addr
}

/// Reads (some of) the request so the client has finished writing.
async fn read_request(stream: &mut tokio::net::TcpStream) {
    let mut buf = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buf)).await;
}

fn plan(slots: &[&str]) -> CompiledPlan {
    CompiledPlan {
        name: "test".into(),
        source: PathBuf::from("test.yaml"),
        target: "http://127.0.0.1".into(),
        load: Load {
            model: LoadModel::Closed(ClosedLoad::Fixed {
                users: 1,
                spawn_rate: None,
            }),
            duration: Some(Duration::from_secs(1)),
            iterations: None,
        },
        flows: Vec::new(),
        requests: Vec::new(),
        expectations: Vec::new(),
        captures: Vec::new(),
        slots: slots
            .iter()
            .map(|s| SlotInfo { name: (*s).into() })
            .collect(),
        feeders: Vec::new(),
        slos: Vec::new(),
    }
}

fn step(method: Method, url: impl Into<String>) -> RequestStep {
    RequestStep {
        request: RequestId(0),
        method,
        url: Template::literal(url),
        headers: Vec::new(),
        query: Vec::new(),
        body: None,
        timeout: T,
        expect: Expect::default(),
        captures: Vec::new(),
        feeders: Vec::new(),
    }
}

struct Env {
    http: HttpShared,
    plan: CompiledPlan,
}

impl Env {
    fn new(slots: &[&str]) -> Env {
        Env::with_config(slots, EngineConfig::default())
    }
    fn with_config(slots: &[&str], config: EngineConfig) -> Env {
        Env {
            http: HttpShared::new(&config).unwrap(),
            plan: plan(slots),
        }
    }
    fn user(&self, n: u32) -> VuContext {
        VuContext::new(n, &self.plan, &self.http)
    }
    async fn run(&self, s: &RequestStep, ctx: &mut VuContext) -> Outcome {
        tokio::time::timeout(
            Duration::from_secs(20),
            execute(s, ctx, &self.http, Instant::now()),
        )
        .await
        .expect("execute is bounded by the request timeout")
    }
}

fn tpl(segments: Vec<Segment>) -> Template {
    Template { segments }
}

fn lit(s: &str) -> Segment {
    Segment::Literal(s.into())
}

fn url(addr: SocketAddr, path: &str) -> String {
    format!("http://{addr}{path}")
}

/// The echo server's view of a request.
fn echoed(ctx: &VuContext, slot: usize) -> Value {
    ctx.slots[slot].clone().expect("echo captured")
}

fn capture_all(slot: u32) -> Capture {
    Capture {
        id: CaptureId(slot),
        slot: SlotId(slot),
        source: CaptureSource::Json(swarm::compile::jsonpath::JsonPath::parse("$").unwrap()),
    }
}

async fn target() -> (SocketAddr, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    (serve(app(hits.clone())).await, hits)
}

#[tokio::test]
async fn plain_get_measures_latency_and_bytes() {
    let (addr, _) = target().await;
    let env = Env::new(&[]);
    let mut user = env.user(0);
    let out = env
        .run(&step(Method::GET, url(addr, "/hello")), &mut user)
        .await;
    assert_eq!(out.result, Ok(()));
    assert_eq!(out.bytes, 11);
    assert!(out.latency > Duration::ZERO);

    // Latency runs from the given start, so a late start cannot hide waiting.
    let earlier = Instant::now() - Duration::from_millis(300);
    let out = execute(
        &step(Method::GET, url(addr, "/hello")),
        &mut user,
        &env.http,
        earlier,
    )
    .await;
    assert_eq!(out.result, Ok(()));
    assert!(out.latency >= Duration::from_millis(300));
}

#[tokio::test]
async fn cookies_are_kept_per_user_and_never_shared() {
    let (addr, _) = target().await;
    let env = Env::new(&["me"]);
    let mut alice = env.user(0);
    let mut bob = env.user(1);
    let set = |u: &str| step(Method::GET, url(addr, &format!("/set?u={u}")));
    let mut me = step(Method::GET, url(addr, "/me"));
    me.captures.push(Capture {
        id: CaptureId(0),
        slot: SlotId(0),
        source: CaptureSource::Regex(regex::Regex::new("^.*$").unwrap()),
    });

    assert_eq!(env.run(&set("alice"), &mut alice).await.result, Ok(()));
    assert_eq!(env.run(&me, &mut alice).await.result, Ok(()));
    assert_eq!(alice.slots[0], Some(json!("session=alice")));

    // Bob has no cookie yet: the capture of an empty body still matches "".
    assert_eq!(env.run(&me, &mut bob).await.result, Ok(()));
    assert_eq!(bob.slots[0], Some(json!("")));

    assert_eq!(env.run(&set("bob"), &mut bob).await.result, Ok(()));
    assert_eq!(env.run(&me, &mut bob).await.result, Ok(()));
    assert_eq!(bob.slots[0], Some(json!("session=bob")));
    assert_eq!(env.run(&me, &mut alice).await.result, Ok(()));
    assert_eq!(alice.slots[0], Some(json!("session=alice")));
}

#[tokio::test]
async fn connections_are_kept_alive_per_user() {
    let (addr, _) = target().await;
    let env = Env::new(&["port"]);
    let mut port = step(Method::GET, url(addr, "/port"));
    port.captures.push(Capture {
        id: CaptureId(0),
        slot: SlotId(0),
        source: CaptureSource::Regex(regex::Regex::new(r"\d+").unwrap()),
    });
    let mut a = env.user(0);
    let mut b = env.user(1);
    env.run(&port, &mut a).await.result.unwrap();
    let first = a.slots[0].clone();
    env.run(&port, &mut a).await.result.unwrap();
    assert_eq!(a.slots[0], first, "the same user reuses its connection");
    env.run(&port, &mut b).await.result.unwrap();
    assert_ne!(b.slots[0], first, "another user has its own connection");
}

#[tokio::test]
async fn capture_chain_login_token_authorized_call() {
    let (addr, _) = target().await;
    let env = Env::new(&["token"]);
    let mut user = env.user(0);
    let mut login = step(Method::POST, url(addr, "/login"));
    login.body = Some(Body::Json(JsonTemplate::Object(vec![
        ("user".into(), JsonTemplate::Value(json!("alice"))),
        ("password".into(), JsonTemplate::Value(json!("pw"))),
    ])));
    login.captures.push(Capture {
        id: CaptureId(0),
        slot: SlotId(0),
        source: CaptureSource::Json(swarm::compile::jsonpath::JsonPath::parse("$.token").unwrap()),
    });
    let mut cart = step(Method::GET, url(addr, "/cart"));
    cart.headers.push((
        AUTHORIZATION,
        tpl(vec![lit("Bearer "), Segment::Slot(SlotId(0))]),
    ));

    assert_eq!(env.run(&login, &mut user).await.result, Ok(()));
    assert_eq!(user.slots[0], Some(json!("T-alice")));
    let out = env.run(&cart, &mut user).await;
    assert_eq!(out.result, Ok(()));
    assert_eq!(out.bytes, 4);

    // Without the header the same call is a 401: the chain really carried the token.
    let bare = step(Method::GET, url(addr, "/cart"));
    assert_eq!(
        env.run(&bare, &mut user).await.result,
        Err(FailureKind::Status(401))
    );
}

#[tokio::test]
async fn regex_and_header_captures_feed_later_requests() {
    let (addr, _) = target().await;
    let env = Env::new(&["csrf", "etag", "echo"]);
    let mut user = env.user(0);
    let mut page = step(Method::GET, url(addr, "/page"));
    page.captures = vec![
        Capture {
            id: CaptureId(0),
            slot: SlotId(0),
            source: CaptureSource::Regex(
                regex::Regex::new(r#"name="csrf" value="([^"]+)""#).unwrap(),
            ),
        },
        Capture {
            id: CaptureId(1),
            slot: SlotId(1),
            source: CaptureSource::Header(HeaderName::from_static("etag")),
        },
    ];
    assert_eq!(env.run(&page, &mut user).await.result, Ok(()));
    assert_eq!(user.slots[0], Some(json!("c-123")));
    assert_eq!(user.slots[1], Some(json!("\"v7\"")));

    let mut echo = step(Method::POST, url(addr, "/echo"));
    echo.headers.push((
        HeaderName::from_static("x-token"),
        tpl(vec![Segment::Slot(SlotId(1))]),
    ));
    echo.body = Some(Body::Raw(tpl(vec![lit("csrf="), Segment::Slot(SlotId(0))])));
    echo.captures.push(capture_all(2));
    assert_eq!(env.run(&echo, &mut user).await.result, Ok(()));
    let seen = echoed(&user, 2);
    assert_eq!(seen["x_token"], "\"v7\"");
    assert_eq!(seen["body"], "csrf=c-123");
    assert_eq!(seen["content_type"], "", "a raw body gets no content type");
}

#[tokio::test]
async fn failed_capture_clears_the_slot_and_the_next_step_is_not_sent() {
    let (addr, hits) = target().await;
    let env = Env::new(&["token"]);
    let mut user = env.user(0);
    user.slots[0] = Some(json!("stale"));
    let mut login = step(Method::POST, url(addr, "/login"));
    login.body = Some(Body::Json(JsonTemplate::Object(vec![
        ("user".into(), JsonTemplate::Value(json!("alice"))),
        ("password".into(), JsonTemplate::Value(json!(""))),
    ])));
    login.captures.push(Capture {
        id: CaptureId(3),
        slot: SlotId(0),
        source: CaptureSource::Json(swarm::compile::jsonpath::JsonPath::parse("$.token").unwrap()),
    });
    let out = env.run(&login, &mut user).await;
    assert_eq!(out.result, Err(FailureKind::Capture(CaptureId(3))));
    assert!(out.latency > Duration::ZERO);
    assert_eq!(user.slots[0], None);

    let mut next = step(Method::GET, url(addr, "/counted"));
    next.query
        .push(("t".into(), tpl(vec![Segment::Slot(SlotId(0))])));
    let out = env.run(&next, &mut user).await;
    assert_eq!(out.result, Err(FailureKind::Unset(SlotId(0))));
    assert_eq!(out.latency, Duration::ZERO);
    assert_eq!(out.bytes, 0);
    assert_eq!(hits.load(Ordering::SeqCst), 0, "nothing was sent");

    // A step that does not need the slot still runs.
    let plain = step(Method::GET, url(addr, "/counted"));
    assert_eq!(env.run(&plain, &mut user).await.result, Ok(()));
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn default_status_rule_and_explicit_status_lists() {
    let (addr, _) = target().await;
    let env = Env::new(&[]);
    let mut user = env.user(0);
    for (code, want) in [
        (200, Ok(())),
        (204, Ok(())),
        (302, Ok(())),
        (399, Ok(())),
        (400, Err(FailureKind::Status(400))),
        (404, Err(FailureKind::Status(404))),
        (500, Err(FailureKind::Status(500))),
    ] {
        let s = step(Method::GET, url(addr, &format!("/status/{code}")));
        assert_eq!(env.run(&s, &mut user).await.result, want, "status {code}");
    }
    let mut listed = step(Method::GET, url(addr, "/status/404"));
    listed.expect.status = Some(StatusExpect {
        id: ExpectId(1),
        allowed: vec![StatusPattern::Exact(200), StatusPattern::Exact(404)],
    });
    assert_eq!(env.run(&listed, &mut user).await.result, Ok(()));
    let mut class = step(Method::GET, url(addr, "/status/201"));
    class.expect.status = Some(StatusExpect {
        id: ExpectId(2),
        allowed: vec![StatusPattern::Class(5)],
    });
    assert_eq!(
        env.run(&class, &mut user).await.result,
        Err(FailureKind::Expect(ExpectId(2))),
        "an unexpected 201 fails"
    );
}

#[tokio::test]
async fn failed_expectations_fail_a_fine_status() {
    let (addr, _) = target().await;
    let env = Env::new(&[]);
    let mut user = env.user(0);
    let mut s = step(Method::GET, url(addr, "/echo?a=1"));
    s.expect.headers.push(HeaderExpect {
        id: ExpectId(0),
        name: CONTENT_TYPE,
        matcher: Matcher::Contains(json!("json")),
    });
    s.expect.json = vec![
        JsonExpect {
            id: ExpectId(1),
            path: swarm::compile::jsonpath::JsonPath::parse("$.method").unwrap(),
            matcher: Matcher::Eq(json!("GET")),
        },
        JsonExpect {
            id: ExpectId(2),
            path: swarm::compile::jsonpath::JsonPath::parse("$.query").unwrap(),
            matcher: Matcher::All(vec![
                Matcher::Matches(regex::Regex::new("^a=").unwrap()),
                Matcher::Len(Box::new(Matcher::Eq(json!(3)))),
            ]),
        },
    ];
    s.expect.body = Some(BodyExpect {
        id: ExpectId(3),
        matcher: Matcher::Contains(json!("\"method\"")),
    });
    assert_eq!(env.run(&s, &mut user).await.result, Ok(()));

    s.expect.json[1].matcher = Matcher::Len(Box::new(Matcher::Gt(3.0)));
    assert_eq!(
        env.run(&s, &mut user).await.result,
        Err(FailureKind::Expect(ExpectId(2)))
    );

    let mut html = step(Method::GET, url(addr, "/page"));
    html.expect.json.push(JsonExpect {
        id: ExpectId(4),
        path: swarm::compile::jsonpath::JsonPath::parse("$.x").unwrap(),
        matcher: Matcher::Exists(true),
    });
    assert_eq!(
        env.run(&html, &mut user).await.result,
        Err(FailureKind::NotJson)
    );

    let mut slow = step(Method::GET, url(addr, "/hello"));
    slow.expect.latency = Some(LatencyExpect {
        id: ExpectId(5),
        max: Duration::from_millis(50),
    });
    let out = execute(
        &slow,
        &mut user,
        &env.http,
        Instant::now() - Duration::from_millis(100),
    )
    .await;
    assert_eq!(out.result, Err(FailureKind::Expect(ExpectId(5))));
}

#[tokio::test]
async fn json_body_keeps_types_and_sets_the_content_type() {
    let (addr, _) = target().await;
    let env = Env::new(&["id", "echo"]);
    let mut user = env.user(7);
    user.slots[0] = Some(json!(41));
    let mut s = step(Method::POST, url(addr, "/echo"));
    s.body = Some(Body::Json(JsonTemplate::Object(vec![
        (
            "product".into(),
            JsonTemplate::String(tpl(vec![Segment::Slot(SlotId(0))])),
        ),
        (
            "qty".into(),
            JsonTemplate::String(tpl(vec![Segment::Func(Func::Rand { lo: 3, hi: 3 })])),
        ),
        (
            "label".into(),
            JsonTemplate::String(tpl(vec![lit("user-"), Segment::Func(Func::User)])),
        ),
    ])));
    s.captures.push(capture_all(1));
    assert_eq!(env.run(&s, &mut user).await.result, Ok(()));
    let seen = echoed(&user, 1);
    assert_eq!(seen["content_type"], "application/json");
    assert_eq!(seen["user_agent"], swarm::engine::http::USER_AGENT);
    let sent: Value = serde_json::from_str(seen["body"].as_str().unwrap()).unwrap();
    assert_eq!(sent, json!({"product": 41, "qty": 3, "label": "user-7"}));
}

#[tokio::test]
async fn form_and_query_are_url_encoded_on_the_wire() {
    let (addr, _) = target().await;
    let env = Env::new(&["echo"]);
    let mut user = env.user(0);
    let mut s = step(Method::PUT, url(addr, "/echo?fixed=1"));
    s.query = vec![
        ("q".into(), tpl(vec![lit("a b&c")])),
        ("page".into(), tpl(vec![Segment::Const(json!(2))])),
    ];
    s.body = Some(Body::Form(vec![
        ("name".into(), tpl(vec![lit("Zoë & co")])),
        ("n".into(), tpl(vec![Segment::Func(Func::Iteration)])),
    ]));
    s.captures.push(capture_all(0));
    user.iteration = 12;
    assert_eq!(env.run(&s, &mut user).await.result, Ok(()));
    let seen = echoed(&user, 0);
    assert_eq!(seen["method"], "PUT");
    assert_eq!(seen["query"], "fixed=1&q=a+b%26c&page=2");
    assert_eq!(seen["content_type"], "application/x-www-form-urlencoded");
    assert_eq!(seen["body"], "name=Zo%C3%AB+%26+co&n=12");
}

#[tokio::test]
async fn a_header_value_that_cannot_be_sent_is_an_invalid_request() {
    let (addr, hits) = target().await;
    let env = Env::new(&["bad"]);
    let mut user = env.user(0);
    user.slots[0] = Some(json!("line\nbreak"));
    let mut s = step(Method::GET, url(addr, "/counted"));
    s.headers.push((
        HeaderName::from_static("x-bad"),
        tpl(vec![Segment::Slot(SlotId(0))]),
    ));
    assert_eq!(
        env.run(&s, &mut user).await.result,
        Err(FailureKind::InvalidRequest)
    );
    let bad_url = step(Method::GET, "http://[::1");
    assert_eq!(
        env.run(&bad_url, &mut user).await.result,
        Err(FailureKind::InvalidRequest)
    );
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn redirects_are_followed_up_to_the_limit() {
    let (addr, _) = target().await;
    let config = EngineConfig {
        max_redirects: 3,
        ..EngineConfig::default()
    };
    let env = Env::with_config(&[], config);
    let mut user = env.user(0);
    let out = env
        .run(&step(Method::GET, url(addr, "/r/3")), &mut user)
        .await;
    assert_eq!(out.result, Ok(()));
    assert_eq!(out.bytes, 4, "the final body is `done`");
    let out = env
        .run(&step(Method::GET, url(addr, "/r/4")), &mut user)
        .await;
    assert_eq!(out.result, Err(FailureKind::TooManyRedirects));
}

#[tokio::test]
async fn refused() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let env = Env::new(&["x"]);
    let mut user = env.user(0);
    user.slots[0] = Some(json!("stale"));
    let mut s = step(Method::GET, format!("http://127.0.0.1:{port}/"));
    s.captures.push(capture_all(0));
    let out = env.run(&s, &mut user).await;
    assert_eq!(out.result, Err(FailureKind::Refused));
    assert_eq!(
        user.slots[0], None,
        "no response: the step's captures are cleared"
    );
}

#[tokio::test]
async fn accept_then_close_is_a_reset() {
    let addr = raw(|mut stream| async move {
        read_request(&mut stream).await;
        drop(stream);
    })
    .await;
    let env = Env::new(&[]);
    let mut user = env.user(0);
    let out = env.run(&step(Method::GET, url(addr, "/")), &mut user).await;
    assert_eq!(out.result, Err(FailureKind::Reset));
}

#[tokio::test]
async fn tcp_reset_is_a_reset() {
    let addr = raw(|mut stream| async move {
        read_request(&mut stream).await;
        // A zero linger makes the close an RST; it never blocks the thread.
        #[expect(deprecated, reason = "SO_LINGER 0 resets at once instead of blocking")]
        let _ = stream.set_linger(Some(Duration::ZERO));
        drop(stream);
    })
    .await;
    let env = Env::new(&[]);
    let mut user = env.user(0);
    let out = env.run(&step(Method::GET, url(addr, "/")), &mut user).await;
    assert_eq!(out.result, Err(FailureKind::Reset));
}

#[tokio::test]
async fn a_stalled_target_times_out_within_the_request_timeout() {
    let addr = raw(|mut stream| async move {
        read_request(&mut stream).await;
        tokio::time::sleep(Duration::from_secs(10)).await;
        drop(stream);
    })
    .await;
    let env = Env::new(&[]);
    let mut user = env.user(0);
    let mut s = step(Method::GET, url(addr, "/"));
    s.timeout = Duration::from_millis(300);
    let out = env.run(&s, &mut user).await;
    assert_eq!(out.result, Err(FailureKind::Timeout));
    assert!(out.latency >= Duration::from_millis(300));
    assert!(out.latency < Duration::from_secs(5));
}

#[tokio::test]
async fn the_timeout_covers_a_body_that_stalls() {
    let addr = raw(|mut stream| async move {
        read_request(&mut stream).await;
        let head = "HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n0123456789";
        let _ = stream.write_all(head.as_bytes()).await;
        tokio::time::sleep(Duration::from_secs(10)).await;
    })
    .await;
    let env = Env::new(&[]);
    let mut user = env.user(0);
    let mut s = step(Method::GET, url(addr, "/"));
    s.timeout = Duration::from_millis(300);
    assert_eq!(
        env.run(&s, &mut user).await.result,
        Err(FailureKind::Timeout)
    );
}

#[tokio::test]
async fn oversized_bodies_fail_without_being_read_whole() {
    let (addr, _) = target().await;
    let config = EngineConfig {
        body_limit: 1024 * 1024,
        ..EngineConfig::default()
    };
    let env = Env::with_config(&[], config);
    let mut user = env.user(0);
    let out = env
        .run(&step(Method::GET, url(addr, "/big")), &mut user)
        .await;
    assert_eq!(out.result, Err(FailureKind::BodyTooLarge));

    // Chunked, so no content-length gives it away: the read stops at the limit.
    // The server would write 64 MiB; it stops when the client hangs up.
    let written = Arc::new(AtomicUsize::new(0));
    let counter = written.clone();
    let chunked = raw(move |mut stream| {
        let counter = counter.clone();
        async move {
            read_request(&mut stream).await;
            let head = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
            if stream.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let chunk = format!("10000\r\n{}\r\n", "y".repeat(0x10000));
            for _ in 0..1024 {
                if stream.write_all(chunk.as_bytes()).await.is_err() {
                    return;
                }
                counter.fetch_add(0x10000, Ordering::SeqCst);
            }
            let _ = stream.write_all(b"0\r\n\r\n").await;
        }
    })
    .await;
    let out = env
        .run(&step(Method::GET, url(chunked, "/")), &mut user)
        .await;
    assert_eq!(out.result, Err(FailureKind::BodyTooLarge));

    // A body at the limit is fine.
    let exact = raw(|mut stream| async move {
        read_request(&mut stream).await;
        let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", 1024 * 1024);
        let _ = stream.write_all(head.as_bytes()).await;
        let _ = stream.write_all(&vec![b'z'; 1024 * 1024]).await;
    })
    .await;
    let out = env
        .run(&step(Method::GET, url(exact, "/")), &mut user)
        .await;
    assert_eq!(out.result, Ok(()));
    assert_eq!(out.bytes, 1024 * 1024);
}

#[tokio::test]
async fn a_reply_that_is_not_http_is_a_protocol_error() {
    let addr = raw(|mut stream| async move {
        read_request(&mut stream).await;
        let _ = stream
            .write_all(b"SSH-2.0-OpenSSH_9.6 not http at all\r\n\r\n")
            .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    })
    .await;
    let env = Env::new(&[]);
    let mut user = env.user(0);
    let out = env.run(&step(Method::GET, url(addr, "/")), &mut user).await;
    assert_eq!(out.result, Err(FailureKind::Protocol));
}

#[tokio::test]
async fn tls_to_a_plain_http_port_is_a_tls_error() {
    let (addr, _) = target().await;
    for insecure in [false, true] {
        let config = EngineConfig {
            insecure,
            ..EngineConfig::default()
        };
        let env = Env::with_config(&[], config);
        let mut user = env.user(0);
        let s = step(Method::GET, format!("https://{addr}/hello"));
        assert_eq!(
            env.run(&s, &mut user).await.result,
            Err(FailureKind::Tls),
            "insecure: {insecure}"
        );
    }
}

#[tokio::test]
async fn head_has_no_body_to_limit() {
    let (addr, _) = target().await;
    let config = EngineConfig {
        body_limit: 1024,
        ..EngineConfig::default()
    };
    let env = Env::with_config(&["echo"], config);
    let mut user = env.user(0);
    let out = env
        .run(&step(Method::HEAD, url(addr, "/big")), &mut user)
        .await;
    assert_eq!(out.result, Ok(()));
    assert_eq!(out.bytes, 0);
}

#[tokio::test]
async fn default_headers_can_be_overridden() {
    let (addr, _) = target().await;
    let env = Env::new(&["ua"]);
    let mut user = env.user(0);
    let mut s = step(Method::GET, url(addr, "/echo"));
    s.expect.json.push(JsonExpect {
        id: ExpectId(0),
        path: swarm::compile::jsonpath::JsonPath::parse("$.content_type").unwrap(),
        matcher: Matcher::Eq(json!("text/x-custom")),
    });
    s.headers
        .push((CONTENT_TYPE, Template::literal("text/x-custom")));
    s.body = Some(Body::Json(JsonTemplate::Value(json!([1]))));
    assert_eq!(
        env.run(&s, &mut user).await.result,
        Ok(()),
        "a plan's content-type wins over the JSON default"
    );
}

/// A TLS target with the self-signed certificate in `tests/fixtures`, answering `ok`.
async fn tls_target() -> SocketAddr {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let cert = CertificateDer::from_pem_file(dir.join("localhost.crt")).unwrap();
    let key = PrivateKeyDer::from_pem_file(dir.join("localhost.key")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    raw(move |stream| {
        let acceptor = acceptor.clone();
        async move {
            let Ok(mut tls) = acceptor.accept(stream).await else {
                return;
            };
            let mut buf = [0u8; 4096];
            let _ = tokio::time::timeout(Duration::from_secs(2), tls.read(&mut buf)).await;
            let _ = tls
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                .await;
            let _ = tls.flush().await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
}

#[tokio::test]
async fn tls_verification_and_insecure() {
    let addr = tls_target().await;
    let s = step(Method::GET, format!("https://localhost:{}/", addr.port()));
    let strict = Env::new(&[]);
    let mut user = strict.user(0);
    assert_eq!(
        strict.run(&s, &mut user).await.result,
        Err(FailureKind::Tls),
        "a self-signed certificate is rejected"
    );
    let insecure = Env::with_config(
        &[],
        EngineConfig {
            insecure: true,
            ..EngineConfig::default()
        },
    );
    let mut user = insecure.user(0);
    let out = insecure.run(&s, &mut user).await;
    assert_eq!(out.result, Ok(()));
    assert_eq!(out.bytes, 2);
}
