//! The running tool's name, for messages printed where no caller can add
//! it (cleanup in `Drop`).

use std::sync::OnceLock;

static NAME: OnceLock<String> = OnceLock::new();

/// Sets the tool's name (`app::cli::run` does); only the first call counts.
pub fn set_name(tool: &str) {
    let _ = NAME.set(tool.to_string());
}

/// The tool's name, or "ftrace-tools" before one was set.
pub fn name() -> &'static str {
    NAME.get().map(String::as_str).unwrap_or("ftrace-tools")
}
