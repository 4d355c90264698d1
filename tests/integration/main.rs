//! The one integration-test binary: every black-box test of amq2api, one module per area.

mod support;
