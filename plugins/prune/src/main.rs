fn main() -> std::process::ExitCode {
    mesh::cli::main("kubectl mesh prune", kubectl_mesh_prune::run)
}
