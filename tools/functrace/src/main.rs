fn main() -> std::process::ExitCode {
    functrace::main()
}
