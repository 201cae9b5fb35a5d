fn main() -> std::process::ExitCode {
    funcgraph::main()
}
