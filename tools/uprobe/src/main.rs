fn main() -> std::process::ExitCode {
    uprobe::main()
}
