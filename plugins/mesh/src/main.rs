fn main() -> std::process::ExitCode {
    // As every step does in shared::cli::main: end quietly when stdout's reader is gone,
    // and read NO_PROXY as Go does (completion connects to the cluster).
    shared::cli::end_quietly_on_closed_pipe();
    // SAFETY: first thing in main, while the process has one thread.
    unsafe { shared::connect::tidy_no_proxy() };
    kubectl_mesh::main(std::env::args_os().collect())
}
