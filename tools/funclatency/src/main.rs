fn main() -> std::process::ExitCode {
    funclatency::main()
}
