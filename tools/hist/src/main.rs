fn main() -> std::process::ExitCode {
    hist::main()
}
