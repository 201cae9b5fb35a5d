fn main() -> std::process::ExitCode {
    kprobe::main()
}
