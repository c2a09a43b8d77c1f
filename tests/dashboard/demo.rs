//! The built-in demo target's shop API.

use serde_json::{Value, json};

use crate::support::{client, demo};

#[tokio::test]
async fn demo_serves_the_shop_api() {
    let server = demo().await;
    let base = server.url();
    let http = client();

    let r = http.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "ok");

    // Every id listed on pages 1..5 resolves, with a positive price.
    for page in 1..=5 {
        let body: Value = http
            .get(format!("{base}/products?page={page}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(body["page"], page);
        let items = body["items"].as_array().unwrap();
        assert_eq!(items.len(), 10);
        for item in items {
            assert!(item["price"].as_f64().unwrap() > 0.0);
            let one = http
                .get(format!("{base}/products/{}", item["id"]))
                .send()
                .await
                .unwrap();
            assert_eq!(one.status(), 200);
            let one: Value = one.json().await.unwrap();
            assert_eq!(&one, item);
        }
    }
    let missing = http.get(format!("{base}/products/100000")).send().await;
    assert_eq!(missing.unwrap().status(), 404);

    // No session yet.
    assert_eq!(
        http.get(format!("{base}/me"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let bad = crate::support::status(
        http.post(format!("{base}/login"))
            .json(&json!({"user": "alice", "password": ""})),
    )
    .await;
    assert_eq!(bad, 401);
    let login = http
        .post(format!("{base}/login"))
        .json(&json!({"user": "alice", "password": "wonderland"}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let token = login.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let me: Value = http
        .get(format!("{base}/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["user"], "alice");

    let cart = http
        .post(format!("{base}/cart"))
        .bearer_auth(&token)
        .json(&json!({"product": 7, "qty": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(cart.status(), 201);
    let cart: Value = cart.json().await.unwrap();
    assert!(cart["cart_id"].is_string());
    assert_eq!(cart["items"][0]["product"], 7);
    for auth in [None, Some("Bearer forged.token.0")] {
        let mut req = http
            .post(format!("{base}/cart"))
            .json(&json!({"product": 7, "qty": 1}));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        assert_eq!(req.send().await.unwrap().status(), 401);
    }

    let started = std::time::Instant::now();
    let slow = crate::support::status(http.get(format!("{base}/slow?ms=120"))).await;
    assert_eq!(slow, 200);
    assert!(started.elapsed() >= std::time::Duration::from_millis(120));

    for (p, want) in [("0", 200), ("1", 500)] {
        let r = http
            .get(format!("{base}/flaky?fail={p}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), want);
    }
    for code in [201, 204, 418, 503] {
        let r = crate::support::status(http.get(format!("{base}/status/{code}"))).await;
        assert_eq!(r, code);
    }
    assert_eq!(
        http.get(format!("{base}/status/99"))
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
}

#[tokio::test]
async fn demo_stops_when_dropped() {
    let server = demo().await;
    let url = format!("{}/health", server.url());
    drop(server);
    let http = client();
    let mut refused = false;
    for _ in 0..50 {
        if http.get(&url).send().await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(refused, "the demo still answers after being dropped");
}
