//! Helpers for tests/dashboard.rs.

/// An HTTP client for loopback tests, with its own cookie jar.
pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .cookie_store(true)
        .no_proxy()
        .timeout(std::time::Duration::from_secs(20))
        .build()
        .expect("client builds")
}
