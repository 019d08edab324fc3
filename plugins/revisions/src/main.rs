fn main() -> std::process::ExitCode {
    mesh::cli::main("kubectl mesh revisions", kubectl_mesh_revisions::run)
}
