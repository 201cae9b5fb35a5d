fn main() -> std::process::ExitCode {
    reset_ftrace::main()
}
