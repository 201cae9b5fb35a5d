fn main() -> std::process::ExitCode {
    funcslower::main()
}
