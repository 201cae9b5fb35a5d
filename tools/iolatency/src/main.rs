fn main() -> std::process::ExitCode {
    iolatency::main()
}
