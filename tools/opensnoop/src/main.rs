fn main() -> std::process::ExitCode {
    opensnoop::main()
}
