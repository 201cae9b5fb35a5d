fn main() -> std::process::ExitCode {
    tcpretrans::main()
}
