fn main() -> std::process::ExitCode {
    cachestat::main()
}
