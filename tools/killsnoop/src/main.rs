fn main() -> std::process::ExitCode {
    killsnoop::main()
}
