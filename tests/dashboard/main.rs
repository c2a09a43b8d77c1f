//! The demo target and the live dashboard, driven over real loopback HTTP during real
//! runs, and in headless Chromium.

// The dashboard is the cargo feature `ui`; the demo target is always built.
#[cfg(feature = "ui")]
mod abuse;
#[cfg(feature = "ui")]
mod browser;
mod demo;
#[cfg(feature = "ui")]
mod interactive;
#[cfg(feature = "ui")]
mod live;
#[cfg(feature = "ui")]
mod search;
#[cfg_attr(
    not(feature = "ui"),
    expect(
        dead_code,
        unused_imports,
        reason = "without the `ui` feature only the demo tests use the support module"
    )
)]
mod support;
