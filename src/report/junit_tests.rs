//! The JUnit report parsed back with an independent XML reader (quick-xml), checking
//! the structure standard JUnit consumers read.

use std::collections::BTreeMap;

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use super::*;
use crate::report::fixture;

/// A parsed XML element.
#[derive(Debug, Default)]
struct Elem {
    name: String,
    attrs: BTreeMap<String, String>,
    children: Vec<Elem>,
    text: String,
}

impl Elem {
    fn all<'a, 'n>(&'a self, name: &'n str) -> impl Iterator<Item = &'a Elem> + use<'a, 'n> {
        self.children.iter().filter(move |c| c.name == name)
    }
    fn one(&self, name: &str) -> &Elem {
        let mut it = self.all(name);
        let e = it
            .next()
            .unwrap_or_else(|| panic!("no <{name}> in <{}>", self.name));
        assert!(it.next().is_none(), "more than one <{name}>");
        e
    }
    fn attr(&self, name: &str) -> &str {
        self.attrs
            .get(name)
            .unwrap_or_else(|| panic!("<{}> has no {name}", self.name))
    }
    fn properties(&self) -> BTreeMap<String, String> {
        self.one("properties")
            .all("property")
            .map(|p| (p.attr("name").to_string(), p.attr("value").to_string()))
            .collect()
    }
}

fn elem(start: &BytesStart) -> Elem {
    Elem {
        name: String::from_utf8(start.name().as_ref().to_vec()).unwrap(),
        attrs: start
            .attributes()
            .map(|a| {
                let a = a.unwrap();
                (
                    String::from_utf8(a.key.as_ref().to_vec()).unwrap(),
                    a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .unwrap()
                        .into_owned(),
                )
            })
            .collect(),
        ..Elem::default()
    }
}

/// Parses `xml` into its root element; panics on malformed XML.
fn parse(xml: &str) -> Elem {
    let mut reader = Reader::from_str(xml);
    let mut stack = vec![Elem::default()];
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Start(s) => stack.push(elem(&s)),
            Event::Empty(s) => {
                let e = elem(&s);
                stack.last_mut().unwrap().children.push(e);
            }
            Event::End(_) => {
                let e = stack.pop().unwrap();
                stack.last_mut().expect("balanced tags").children.push(e);
            }
            Event::Text(t) => {
                let text = t.decode().unwrap();
                let text = quick_xml::escape::unescape(&text).unwrap().into_owned();
                stack.last_mut().unwrap().text.push_str(&text);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(stack.len(), 1, "unclosed tags");
    let mut doc = stack.pop().unwrap();
    assert_eq!(doc.children.len(), 1, "one root element");
    doc.children.pop().unwrap()
}

fn result(saturated: bool) -> RunResult {
    let slos = vec![
        fixture::p95_under_300ms(),
        fixture::cart_without_failures(),
        fixture::login_p99_under_1s(),
    ];
    fixture::result(slos, |snap| {
        if saturated {
            snap.generator.saturated = Some("CPU <busy> & lagging".into());
        }
    })
}

#[test]
fn one_suite_with_a_case_per_slo_and_per_failing_request() {
    let xml = render(&result(false).report).unwrap();
    let root = parse(&xml);
    assert_eq!(root.name, "testsuites");
    let suite = root.one("testsuite");
    assert_eq!(suite.attr("name"), "shop");
    assert_eq!(suite.attr("tests"), "4");
    assert_eq!(suite.attr("failures"), "3");
    assert_eq!(suite.attr("time").parse::<f64>().unwrap(), 10.0);
    assert!(suite.attrs.contains_key("timestamp"));
    let cases: Vec<&Elem> = suite.all("testcase").collect();
    let names: Vec<&str> = cases.iter().map(|c| c.attr("name")).collect();
    assert_eq!(
        names,
        [
            "p95 < 300ms",
            "add to cart: failures == 0",
            "POST /login: p99 < 1s",
            "add to cart"
        ]
    );

    // A passing SLO: no failure element, value and limit as properties.
    assert!(cases[0].children.iter().all(|c| c.name != "failure"));
    let props = cases[0].properties();
    assert_eq!(props["limit"], "300ms");
    assert_eq!(props["metric"], "p95");
    assert_eq!(cases[0].attr("classname"), "shop.slo");

    // A failing SLO: value and limit in the message.
    let failure = cases[1].one("failure");
    assert_eq!(
        failure.attr("message"),
        "add to cart: failures == 0: measured 3, limit == 0"
    );
    assert_eq!(failure.attr("type"), "slo");
    assert_eq!(cases[1].properties()["value"], "3");

    // The request never sent says so.
    let failure = cases[2].one("failure");
    assert!(failure.attr("message").contains("no requests were made"));
    assert_eq!(cases[2].properties()["note"], "no requests were made");

    // The request with failures lists reasons and counts.
    let failure = cases[3].one("failure");
    assert_eq!(
        failure.attr("message"),
        "3 of 20 requests failed: 2 × HTTP 500, 1 × expected status 201"
    );
    assert_eq!(failure.text, "2 × HTTP 500\n1 × expected status 201");
    assert_eq!(cases[3].attr("classname"), "shop.requests");
    assert_eq!(cases[3].properties()["versions"], "HTTP/2=18, HTTP/1.1=2");
    // The Type column: the method, or WS, TCP.
    assert_eq!(cases[3].properties()["type"], "POST");

    let props = suite.properties();
    assert_eq!(props["generator.saturated"], "false");
    assert_eq!(props["target"], "http://127.0.0.1:8080");
    assert_eq!(props["versions.add to cart"], "HTTP/2=18, HTTP/1.1=2");
    assert!(!props.contains_key("versions.list products"), "{props:?}");
}

#[test]
fn saturation_is_a_suite_property_and_text_is_escaped() {
    let xml = render(&result(true).report).unwrap();
    let suite = parse(&xml).one("testsuite").properties();
    assert_eq!(suite["generator.saturated"], "true");
    assert_eq!(suite["generator.saturated_reason"], "CPU <busy> & lagging");
}

#[test]
fn the_sink_writes_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junit.xml");
    let mut sink = JunitSink { path: path.clone() };
    sink.emit(&result(false)).unwrap();
    let root = parse(&std::fs::read_to_string(&path).unwrap());
    assert_eq!(root.one("testsuite").attr("name"), "shop");
}
