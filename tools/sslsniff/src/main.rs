fn main() -> std::process::ExitCode {
    sslsniff::main()
}
