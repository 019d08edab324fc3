fn main() -> std::process::ExitCode {
    shared::cli::main("kubectl mesh roll", kubectl_mesh_roll::run)
}
