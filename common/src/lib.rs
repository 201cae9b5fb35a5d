//! ftrace-common: the shared engine of ftrace-tools (work in progress).
