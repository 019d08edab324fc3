fn main() -> std::process::ExitCode {
    shared::cli::main("kubectl mesh switchover", kubectl_mesh_switchover::run)
}
