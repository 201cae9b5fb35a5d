fn main() -> std::process::ExitCode {
    iosnoop::main()
}
