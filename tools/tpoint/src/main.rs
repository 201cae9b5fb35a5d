fn main() -> std::process::ExitCode {
    tpoint::main()
}
