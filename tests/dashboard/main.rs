//! The demo target and the live dashboard, driven over real loopback HTTP during real
//! runs, and in headless Chromium.

mod browser;
mod demo;
mod interactive;
mod live;
mod support;
