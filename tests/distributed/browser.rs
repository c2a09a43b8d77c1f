//! The dashboard tests' WebDriver client (headless Chromium through chromedriver),
//! for the pages of a run on many machines.

#[path = "../dashboard/support/webdriver.rs"]
#[expect(dead_code, reason = "screenshots and window sizes are not used here")]
pub mod webdriver;

/// The HTTP client the WebDriver client talks to chromedriver with.
pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .timeout(std::time::Duration::from_secs(20))
        .build()
        .expect("client builds")
}
