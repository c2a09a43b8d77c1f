//! A call rendered once: an HTTP call whose URL, query, headers and body have no
//! per-user templates (the benchmark's `get: /json`) renders the same bytes for
//! every request of every user, so it is rendered on its first use and kept in the
//! compiled call ([`FixedCall`]), shared by every thread. A request of it renders
//! nothing, and the lean client copies its HTTP/1.1 head in one piece around the
//! user's cookies ([`FixedHead`]).

use std::sync::OnceLock;

use http::HeaderMap;
use rand::SeedableRng;
use rand::rngs::SmallRng;

use super::lean::FixedHead;
use super::session::Buffers;
use crate::compile::graph::HttpCall;
use crate::engine::render::Scope;

/// The slot in a compiled [`HttpCall`] that holds it rendered once; empty until the
/// call's first use, then `None` for a call with templates.
#[derive(Debug, Default)]
pub struct FixedCall(OnceLock<Option<Box<Fixed>>>);

/// What every request of a fixed call sends.
#[derive(Debug)]
pub struct Fixed {
    pub(super) url: String,
    pub(super) headers: HeaderMap,
    pub(super) body: Vec<u8>,
    /// The lean client's HTTP/1.1 head; `None` when the URL is not one it can send,
    /// which then fails per request as before.
    pub(super) head: Option<FixedHead>,
}

impl FixedCall {
    /// `call` rendered once, made on the first call; `None` when it has templates, or
    /// when rendering it fails (a header value that cannot be sent), so that each
    /// request renders it and fails as it always did.
    pub(super) fn get(call: &HttpCall) -> Option<&Fixed> {
        let fixed = call.fixed.0.get_or_init(|| render(call)).as_deref();
        // A call changed after its first use would send what it was: loud in tests.
        #[cfg(debug_assertions)]
        if let Some(made) = fixed {
            let now = render(call);
            debug_assert!(
                now.is_some_and(|now| {
                    made.url == now.url && made.headers == now.headers && made.body == now.body
                }),
                "an HTTP call changed after it was first sent"
            );
        }
        fixed
    }

    /// What [`FixedCall::get`] made, without making it.
    pub(super) fn made(call: &HttpCall) -> Option<&Fixed> {
        call.fixed.0.get().and_then(Option::as_deref)
    }
}

fn render(call: &HttpCall) -> Option<Box<Fixed>> {
    if !call.is_fixed() {
        return None;
    }
    // Literals and plan constants read nothing from the scope: any user's renders
    // the same bytes.
    let mut rng = SmallRng::seed_from_u64(0);
    let mut scope = Scope {
        user: 0,
        iteration: 0,
        slots: &[],
        rows: &[],
        rng: &mut rng,
    };
    let mut bufs = Buffers::default();
    bufs.render(call, &mut scope).ok()?;
    let head = FixedHead::new(call.method.as_str(), &bufs.url, &bufs.headers, &bufs.body);
    Some(Box::new(Fixed {
        url: bufs.url,
        headers: bufs.headers,
        body: bufs.body,
        head,
    }))
}

#[cfg(test)]
mod tests {
    use http::{HeaderName, Method};
    use serde_json::json;

    use super::*;
    use crate::compile::graph::{Body, Func, JsonTemplate, Segment, SlotId, Template};

    fn call(url: Template, header: Template, body: Option<Body>) -> HttpCall {
        HttpCall {
            method: Method::POST,
            url,
            headers: vec![(HeaderName::from_static("x-token"), header)],
            query: vec![("q".into(), Template::literal("a b"))],
            body,
            fixed: FixedCall::default(),
        }
    }

    fn with_const(text: &str) -> Template {
        Template {
            segments: vec![Segment::Literal(text.into()), Segment::Const(json!(7))],
        }
    }

    /// Literals and plan constants are rendered once, exactly as a request renders
    /// them, and the lean client's head is made from them.
    #[test]
    fn a_call_without_templates_is_rendered_once() {
        let body = JsonTemplate::Object(vec![(
            "n".into(),
            JsonTemplate::String(Template {
                segments: vec![Segment::Const(json!(7))],
            }),
        )]);
        let c = call(
            with_const("http://h:1/p"),
            with_const("t"),
            Some(Body::Json(body)),
        );
        let fixed = FixedCall::get(&c).expect("rendered once");
        assert_eq!(fixed.url, "http://h:1/p7?q=a+b");
        assert_eq!(fixed.headers["x-token"], "t7");
        assert_eq!(fixed.headers["content-type"], "application/json");
        assert_eq!(fixed.body, br#"{"n":7}"#);
        assert!(fixed.head.is_some());
        let again = FixedCall::get(&c).unwrap();
        assert!(std::ptr::eq(fixed, again), "made once");
        assert!(std::ptr::eq(FixedCall::made(&c).unwrap(), fixed));
    }

    /// Anything that differs per user or per request is rendered per request.
    #[test]
    fn a_call_with_templates_is_rendered_per_request() {
        let per_request = [
            Segment::Slot(SlotId(0)),
            Segment::Func(Func::Uuid),
            Segment::Func(Func::User),
        ];
        for segment in per_request {
            let t = Template {
                segments: vec![Segment::Literal("x".into()), segment],
            };
            let calls = [
                call(t.clone(), Template::literal("t"), None),
                call(Template::literal("http://h/"), t.clone(), None),
                call(
                    Template::literal("http://h/"),
                    Template::literal("t"),
                    Some(Body::Raw(t.clone())),
                ),
                call(
                    Template::literal("http://h/"),
                    Template::literal("t"),
                    Some(Body::Json(JsonTemplate::Array(vec![JsonTemplate::String(
                        t.clone(),
                    )]))),
                ),
            ];
            for c in calls {
                assert!(FixedCall::get(&c).is_none(), "{c:?}");
                assert!(FixedCall::made(&c).is_none());
            }
        }
        // A header value that cannot be sent fails per request, as it did.
        let bad = call(
            Template::literal("http://h/"),
            Template::literal("a\nb"),
            None,
        );
        assert!(FixedCall::get(&bad).is_none());
    }
}
