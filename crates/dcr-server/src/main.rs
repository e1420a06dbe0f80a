//! The `dcr` binary.

use clap::Parser as _;

/// mimalloc instead of the system allocator: a request allocates and frees many small
/// objects (JSON values, strings), where glibc's malloc spent about a quarter of a
/// registration's instructions (see `bench/README.md`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = dcr_server::cli::Cli::parse();
    match dcr_server::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dcr: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
