fn main() -> std::process::ExitCode {
    shared::cli::main("kubectl mesh relabel", kubectl_mesh_relabel::run)
}
