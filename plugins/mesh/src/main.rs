fn main() -> std::process::ExitCode {
    kubectl_mesh::main(std::env::args_os().collect())
}
