fn main() -> std::process::ExitCode {
    ftrace_status::main()
}
