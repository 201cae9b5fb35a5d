fn main() -> std::process::ExitCode {
    bitesize::main()
}
