fn main() -> std::process::ExitCode {
    funccount::main()
}
