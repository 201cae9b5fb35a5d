fn main() -> std::process::ExitCode {
    offcputime::main()
}
