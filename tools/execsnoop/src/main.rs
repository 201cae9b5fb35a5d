fn main() -> std::process::ExitCode {
    execsnoop::main()
}
