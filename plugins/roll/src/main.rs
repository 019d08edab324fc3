fn main() -> std::process::ExitCode {
    mesh::cli::main("kubectl mesh roll", kubectl_mesh_roll::run)
}
