//! The application frame every tool's `main` stands on: running with stop
//! signals handled and errors turned into one line and an exit status, the
//! shared option families, output that ends quietly on a closed pipe,
//! tables, histograms and JSON, counted stacks and flame graphs, and man
//! pages from the CLI definition.

pub mod attach;
pub mod blockio;
pub mod cli;
pub mod flame;
pub mod opts;
pub mod output;
pub mod printer;
pub mod signals;
pub mod snoop;
pub mod stacks;
pub mod status;
pub mod stream;
