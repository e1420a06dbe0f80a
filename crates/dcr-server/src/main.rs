//! The `dcr` binary.

use clap::Parser as _;

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
