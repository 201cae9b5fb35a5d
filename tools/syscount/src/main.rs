fn main() -> std::process::ExitCode {
    syscount::main()
}
