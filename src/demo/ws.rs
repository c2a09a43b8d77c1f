//! The demo's WebSocket endpoint, `GET /ws`: a JSON `{"type": "ping", "id": X}` is
//! answered `{"type": "pong", "id": X, "ok": true, "ts": <unix ms>}`; a
//! `{"type": "subscribe", "topic": T, "count": N}` makes the server push N events
//! `{"type": "event", "topic": T, "seq": 1..=N}` (at most 100); any other message is
//! echoed as it came, text or binary.

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use serde_json::{Value, json};

/// The most events one `subscribe` pushes.
const MAX_EVENTS: u64 = 100;
/// The largest message the demo reads (it is a demo, not a file store).
const MAX_MESSAGE: usize = 1 << 20;

pub(super) async fn upgrade(ws: WebSocketUpgrade) -> Response {
    ws.max_message_size(MAX_MESSAGE).on_upgrade(serve)
}

async fn serve(mut socket: WebSocket) {
    while let Some(Ok(message)) = socket.recv().await {
        let replies = match message {
            Message::Text(text) => answer(text.as_str()),
            Message::Binary(b) => vec![Message::Binary(b)],
            Message::Close(_) => return,
            Message::Ping(_) | Message::Pong(_) => continue,
        };
        for reply in replies {
            if socket.send(reply).await.is_err() {
                return;
            }
        }
    }
}

/// The replies to one text message.
fn answer(text: &str) -> Vec<Message> {
    let Ok(msg) = serde_json::from_str::<Value>(text) else {
        return vec![Message::Text(text.into())];
    };
    match msg.get("type").and_then(Value::as_str) {
        Some("ping") => {
            let ts = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            let pong = json!({ "type": "pong", "id": msg.get("id"), "ok": true, "ts": ts });
            vec![Message::Text(pong.to_string().into())]
        }
        Some("subscribe") => {
            let topic = msg.get("topic").cloned().unwrap_or(Value::Null);
            let count = msg.get("count").and_then(Value::as_u64).unwrap_or(1);
            (1..=count.min(MAX_EVENTS))
                .map(|seq| {
                    let event = json!({ "type": "event", "topic": topic, "seq": seq });
                    Message::Text(event.to_string().into())
                })
                .collect()
        }
        _ => vec![Message::Text(text.into())],
    }
}
