//! Shared test set-up: temporary databases, running the real binary, and the fake Amazon Q.
#![allow(dead_code)]

pub mod fake_q;
