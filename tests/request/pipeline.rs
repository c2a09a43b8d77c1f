//! Rendering, cookies, connections, captures and expectations.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderName, Method};
use serde_json::{Value, json};
use swarm::compile::graph::*;
use swarm::engine::config::HttpConfig;
use swarm::engine::request::execute;
use swarm::metrics::failure::{CheckFailure, FailureKind, ProtocolFailure};

use swarm::engine::http::Implementation;

use crate::support::*;

async fn plain_get_measures_latency_and_bytes(imp: Implementation) {
    let (addr, _) = target().await;
    let env = Env::new(imp, &[]);
    let mut user = env.user(0);
    let out = env
        .run(&step(Method::GET, url(addr, "/hello")), &mut user)
        .await;
    assert_eq!(out.result, Ok(()));
    assert_eq!(out.bytes, 11);
    assert!(out.latency > Duration::ZERO);

    // Latency runs from the given start, so a late start cannot hide waiting.
    let earlier = Instant::now() - Duration::from_millis(300);
    let out = execute(&step(Method::GET, url(addr, "/hello")), &mut user, earlier).await;
    assert_eq!(out.result, Ok(()));
    assert!(out.latency >= Duration::from_millis(300));
}

async fn cookies_are_kept_per_user_and_never_shared(imp: Implementation) {
    let (addr, _) = target().await;
    let env = Env::new(imp, &["me"]);
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

async fn connections_are_kept_alive_per_user(imp: Implementation) {
    let (addr, _) = target().await;
    let env = Env::new(imp, &["port"]);
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

async fn capture_chain_login_token_authorized_call(imp: Implementation) {
    let (addr, _) = target().await;
    let env = Env::new(imp, &["token"]);
    let mut user = env.user(0);
    let mut login = step(Method::POST, url(addr, "/login"));
    http(&mut login).body = Some(Body::Json(JsonTemplate::Object(vec![
        ("user".into(), JsonTemplate::Value(json!("alice"))),
        ("password".into(), JsonTemplate::Value(json!("pw"))),
    ])));
    login.captures.push(Capture {
        id: CaptureId(0),
        slot: SlotId(0),
        source: CaptureSource::Json(swarm::compile::jsonpath::JsonPath::parse("$.token").unwrap()),
    });
    let mut cart = step(Method::GET, url(addr, "/cart"));
    http(&mut cart).headers.push((
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
        Err(FailureKind::Protocol(ProtocolFailure::HttpStatus(401)))
    );
}

async fn regex_and_header_captures_feed_later_requests(imp: Implementation) {
    let (addr, _) = target().await;
    let env = Env::new(imp, &["csrf", "etag", "echo"]);
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
    http(&mut echo).headers.push((
        HeaderName::from_static("x-token"),
        tpl(vec![Segment::Slot(SlotId(1))]),
    ));
    http(&mut echo).body = Some(Body::Raw(tpl(vec![lit("csrf="), Segment::Slot(SlotId(0))])));
    echo.captures.push(capture_all(2));
    assert_eq!(env.run(&echo, &mut user).await.result, Ok(()));
    let seen = echoed(&user, 2);
    assert_eq!(seen["x_token"], "\"v7\"");
    assert_eq!(seen["body"], "csrf=c-123");
    assert_eq!(seen["content_type"], "", "a raw body gets no content type");
}

async fn failed_capture_clears_the_slot_and_the_next_step_is_not_sent(imp: Implementation) {
    let (addr, hits) = target().await;
    let env = Env::new(imp, &["token"]);
    let mut user = env.user(0);
    user.slots[0] = Some(json!("stale"));
    let mut login = step(Method::POST, url(addr, "/login"));
    http(&mut login).body = Some(Body::Json(JsonTemplate::Object(vec![
        ("user".into(), JsonTemplate::Value(json!("alice"))),
        ("password".into(), JsonTemplate::Value(json!(""))),
    ])));
    login.captures.push(Capture {
        id: CaptureId(3),
        slot: SlotId(0),
        source: CaptureSource::Json(swarm::compile::jsonpath::JsonPath::parse("$.token").unwrap()),
    });
    let out = env.run(&login, &mut user).await;
    assert_eq!(
        out.result,
        Err(FailureKind::Check(CheckFailure::Capture(CaptureId(3))))
    );
    assert!(out.latency > Duration::ZERO);
    assert_eq!(user.slots[0], None);

    let mut next = step(Method::GET, url(addr, "/counted"));
    http(&mut next)
        .query
        .push(("t".into(), tpl(vec![Segment::Slot(SlotId(0))])));
    let out = env.run(&next, &mut user).await;
    assert_eq!(
        out.result,
        Err(FailureKind::Check(CheckFailure::Unset(SlotId(0))))
    );
    assert_eq!(out.latency, Duration::ZERO);
    assert_eq!(out.bytes, 0);
    assert_eq!(hits.load(Ordering::SeqCst), 0, "nothing was sent");

    // A step that does not need the slot still runs.
    let plain = step(Method::GET, url(addr, "/counted"));
    assert_eq!(env.run(&plain, &mut user).await.result, Ok(()));
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

async fn default_status_rule_and_explicit_status_lists(imp: Implementation) {
    let (addr, _) = target().await;
    let env = Env::new(imp, &[]);
    let mut user = env.user(0);
    for (code, want) in [
        (200, Ok(())),
        (204, Ok(())),
        (302, Ok(())),
        (399, Ok(())),
        (
            400,
            Err(FailureKind::Protocol(ProtocolFailure::HttpStatus(400))),
        ),
        (
            404,
            Err(FailureKind::Protocol(ProtocolFailure::HttpStatus(404))),
        ),
        (
            500,
            Err(FailureKind::Protocol(ProtocolFailure::HttpStatus(500))),
        ),
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
        Err(FailureKind::Check(CheckFailure::Expect(ExpectId(2)))),
        "an unexpected 201 fails"
    );
}

async fn failed_expectations_fail_a_fine_status(imp: Implementation) {
    let (addr, _) = target().await;
    let env = Env::new(imp, &[]);
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
        Err(FailureKind::Check(CheckFailure::Expect(ExpectId(2))))
    );

    let mut html = step(Method::GET, url(addr, "/page"));
    html.expect.json.push(JsonExpect {
        id: ExpectId(4),
        path: swarm::compile::jsonpath::JsonPath::parse("$.x").unwrap(),
        matcher: Matcher::Exists(true),
    });
    assert_eq!(
        env.run(&html, &mut user).await.result,
        Err(FailureKind::Check(CheckFailure::NotJson))
    );

    let mut slow = step(Method::GET, url(addr, "/hello"));
    slow.expect.latency = Some(LatencyExpect {
        id: ExpectId(5),
        max: Duration::from_millis(50),
    });
    let out = execute(
        &slow,
        &mut user,
        Instant::now() - Duration::from_millis(100),
    )
    .await;
    assert_eq!(
        out.result,
        Err(FailureKind::Check(CheckFailure::Expect(ExpectId(5))))
    );
}

async fn json_body_keeps_types_and_sets_the_content_type(imp: Implementation) {
    let (addr, _) = target().await;
    let env = Env::new(imp, &["id", "echo"]);
    let mut user = env.user(7);
    user.slots[0] = Some(json!(41));
    let mut s = step(Method::POST, url(addr, "/echo"));
    http(&mut s).body = Some(Body::Json(JsonTemplate::Object(vec![
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

async fn form_and_query_are_url_encoded_on_the_wire(imp: Implementation) {
    let (addr, _) = target().await;
    let env = Env::new(imp, &["echo"]);
    let mut user = env.user(0);
    let mut s = step(Method::PUT, url(addr, "/echo?fixed=1"));
    http(&mut s).query = vec![
        ("q".into(), tpl(vec![lit("a b&c")])),
        ("page".into(), tpl(vec![Segment::Const(json!(2))])),
    ];
    http(&mut s).body = Some(Body::Form(vec![
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

async fn a_header_value_that_cannot_be_sent_is_an_invalid_request(imp: Implementation) {
    let (addr, hits) = target().await;
    let env = Env::new(imp, &["bad"]);
    let mut user = env.user(0);
    user.slots[0] = Some(json!("line\nbreak"));
    let mut s = step(Method::GET, url(addr, "/counted"));
    http(&mut s).headers.push((
        HeaderName::from_static("x-bad"),
        tpl(vec![Segment::Slot(SlotId(0))]),
    ));
    assert_eq!(
        env.run(&s, &mut user).await.result,
        Err(FailureKind::Check(CheckFailure::InvalidRequest))
    );
    let bad_url = step(Method::GET, "http://[::1");
    assert_eq!(
        env.run(&bad_url, &mut user).await.result,
        Err(FailureKind::Check(CheckFailure::InvalidRequest))
    );
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}

async fn head_has_no_body_to_limit(imp: Implementation) {
    let (addr, _) = target().await;
    let config = HttpConfig {
        body_limit: 1024,
        ..HttpConfig::default()
    };
    let env = Env::with_config(imp, &["echo"], config);
    let mut user = env.user(0);
    let out = env
        .run(&step(Method::HEAD, url(addr, "/big")), &mut user)
        .await;
    assert_eq!(out.result, Ok(()));
    assert_eq!(out.bytes, 0);
}

async fn default_headers_can_be_overridden(imp: Implementation) {
    let (addr, _) = target().await;
    let env = Env::new(imp, &["ua"]);
    let mut user = env.user(0);
    let mut s = step(Method::GET, url(addr, "/echo"));
    s.expect.json.push(JsonExpect {
        id: ExpectId(0),
        path: swarm::compile::jsonpath::JsonPath::parse("$.content_type").unwrap(),
        matcher: Matcher::Eq(json!("text/x-custom")),
    });
    http(&mut s)
        .headers
        .push((CONTENT_TYPE, Template::literal("text/x-custom")));
    http(&mut s).body = Some(Body::Json(JsonTemplate::Value(json!([1]))));
    assert_eq!(
        env.run(&s, &mut user).await.result,
        Ok(()),
        "a plan's content-type wins over the JSON default"
    );
}

async fn cookie_paths_and_hosts_are_honoured(imp: Implementation) {
    let (addr, _) = target().await;
    let env = Env::new(imp, &["a", "b", "other_host"]);
    let mut user = env.user(0);
    let body_to = |slot: u32, path: String| {
        let mut s = step(Method::GET, path);
        s.captures.push(Capture {
            id: CaptureId(slot),
            slot: SlotId(slot),
            source: CaptureSource::Regex(regex::Regex::new("^.*$").unwrap()),
        });
        s
    };
    env.run(&step(Method::GET, url(addr, "/a/set")), &mut user)
        .await
        .result
        .unwrap();
    env.run(&body_to(0, url(addr, "/a/me")), &mut user)
        .await
        .result
        .unwrap();
    env.run(&body_to(1, url(addr, "/b/me")), &mut user)
        .await
        .result
        .unwrap();
    let localhost = format!("http://localhost:{}/a/me", addr.port());
    env.run(&body_to(2, localhost), &mut user)
        .await
        .result
        .unwrap();
    assert_eq!(user.slots[0], Some(json!("scoped=1")));
    assert_eq!(user.slots[1], Some(json!("")), "path /a does not cover /b");
    assert_eq!(
        user.slots[2],
        Some(json!("")),
        "another host gets no cookie"
    );
}

per_client!(
    cookie_paths_and_hosts_are_honoured,
    plain_get_measures_latency_and_bytes,
    cookies_are_kept_per_user_and_never_shared,
    connections_are_kept_alive_per_user,
    capture_chain_login_token_authorized_call,
    regex_and_header_captures_feed_later_requests,
    failed_capture_clears_the_slot_and_the_next_step_is_not_sent,
    default_status_rule_and_explicit_status_lists,
    failed_expectations_fail_a_fine_status,
    json_body_keeps_types_and_sets_the_content_type,
    form_and_query_are_url_encoded_on_the_wire,
    a_header_value_that_cannot_be_sent_is_an_invalid_request,
    head_has_no_body_to_limit,
    default_headers_can_be_overridden,
);
