//! Black-box tests of `tpoint`.
mod support;
