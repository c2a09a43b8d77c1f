//! The request pipeline against real loopback servers: rendering, cookies, captures,
//! expectations, redirects and every transport failure kind.

mod pipeline;
mod support;
mod transport;
