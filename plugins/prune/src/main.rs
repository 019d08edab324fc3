fn main() -> std::process::ExitCode {
    shared::cli::main("kubectl mesh prune", kubectl_mesh_prune::run)
}
