//! Helpers shared by the black-box tests (filled in with the first tool).
#![allow(dead_code)]
