fn main() -> std::process::ExitCode {
    shared::cli::main("kubectl mesh revisions", kubectl_mesh_revisions::run_cli)
}
