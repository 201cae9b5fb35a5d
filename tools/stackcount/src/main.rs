fn main() -> std::process::ExitCode {
    stackcount::main()
}
