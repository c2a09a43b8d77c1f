//! The request pipeline against real loopback servers: rendering, cookies, captures,
//! expectations, redirects and every transport failure kind.

/// Runs each named test, an `async fn(Implementation)`, once per HTTP client
/// implementation: `lean::name` and `reqwest::name`.
macro_rules! per_client {
    ($($name:ident),* $(,)?) => {
        mod lean {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(swarm::engine::http::Implementation::Lean).await
                }
            )*
        }
        mod reqwest {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(swarm::engine::http::Implementation::Reqwest).await
                }
            )*
        }
    };
}

mod h2;
mod parallel;
mod pipeline;
mod plans;
mod support;
mod transport;
