//! HTTP clients for virtual users.

pub mod lean;
