fn main() -> std::process::ExitCode {
    mesh::cli::main("kubectl mesh relabel", kubectl_mesh_relabel::run)
}
