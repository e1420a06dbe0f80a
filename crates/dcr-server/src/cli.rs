use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use dcr_core::registrar::{MintInitialAccessToken, PruneRules};

use crate::app::{Application, build_registrar, shutdown_signal};
use crate::config::{Config, InitialAccessTokenSetting};
use crate::storage::{OpenStore, StorageKind};

/// dcr: OAuth 2.0 / OpenID Connect Dynamic Client Registration server.
#[derive(Debug, Parser)]
#[command(name = "dcr", version, about)]
pub struct Cli {
    /// The configuration file (TOML). Without one, built-in defaults and DCR_* variables apply.
    #[arg(long, short, global = true, env = "DCR_CONFIG")]
    pub config: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs the registration server.
    Serve {
        /// Benchmarks only: registers this many generated clients (through the registrar and
        /// the configured store) before accepting connections.
        #[arg(long, hide = true, default_value_t = 0)]
        seed_clients: u64,
    },
    /// Manages initial access tokens (when `registration.initial_access_token = true`).
    #[command(subcommand)]
    Iat(IatCommand),
    /// Checks the configuration and the scripts it names, then exits.
    CheckConfig,
    /// Lists, shows, deletes and prunes registered clients in the configured store.
    #[command(subcommand)]
    Clients(ClientsCommand),
    /// Checks Client ID Metadata Documents; lists and evicts the ones kept in the store.
    #[command(subcommand)]
    Cimd(crate::cli_cimd::CimdCommand),
}

/// Client administration commands.
#[derive(Debug, Subcommand)]
pub enum ClientsCommand {
    /// Lists clients: id, name, created, managed, initial access token.
    List {
        /// At most this many.
        #[arg(long, default_value_t = 1000)]
        limit: usize,
        /// Start after this client id (paging).
        #[arg(long, allow_hyphen_values = true)]
        after: Option<String>,
    },
    /// Prints a client's stored metadata as JSON (the secret redacted unless `--show-secret`).
    Show {
        /// The client id (generated ids may start with `-`).
        #[arg(allow_hyphen_values = true)]
        client_id: String,
        /// Print `client_secret` as stored.
        #[arg(long)]
        show_secret: bool,
    },
    /// Deletes a client and its registration access tokens.
    Delete {
        /// The client id (generated ids may start with `-`).
        #[arg(allow_hyphen_values = true)]
        client_id: String,
    },
    /// Removes abandoned open registrations by the `[registration.prune]` rules.
    Prune {
        /// Only list what would be removed.
        #[arg(long)]
        dry_run: bool,
    },
}

/// Initial access token commands.
#[derive(Debug, Subcommand)]
pub enum IatCommand {
    /// Mints a token; prints it alone on the last line of stdout. It is not kept anywhere else.
    Create {
        /// A policy to run on registrations made with the token (repeat for several, in order).
        #[arg(long = "policy")]
        policies: Vec<String>,
        /// Lifetime in seconds (default: no expiry).
        #[arg(long)]
        expires_in: Option<i64>,
        /// How many registrations it may authorise (default: unlimited).
        #[arg(long)]
        max_uses: Option<u64>,
        /// A label shown in listings and logs.
        #[arg(long)]
        label: Option<String>,
    },
    /// Lists tokens: id, label, policies, expiry, uses left (never the token).
    List,
    /// Revokes the token with this id.
    Revoke {
        /// The token id (from `dcr iat list`).
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
}

/// Runs the command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::load(cli.config.as_deref())?;
    crate::telemetry::init(&config.log);
    config.log_warnings();
    match cli.command {
        Command::Serve { seed_clients } => {
            config.log_discovery_warnings();
            let app = Application::build(&config).await?;
            if seed_clients > 0 {
                crate::seed::seed(app.registrar(), seed_clients).await?;
            }
            app.run_until_stopped(shutdown_signal()).await
        }
        Command::CheckConfig => {
            let store = OpenStore::open(&config).await?;
            let registrar = build_registrar(&config, &store)?;
            crate::cimd::client_resolver(&config, &store, &registrar)?;
            store.close().await;
            config.print_discovery_warnings();
            println!("configuration is valid");
            Ok(())
        }
        Command::Iat(command) => iat(&config, command).await,
        Command::Clients(command) => clients(&config, command).await,
        Command::Cimd(command) => crate::cli_cimd::run(&config, command).await,
    }
}

async fn clients(config: &Config, command: ClientsCommand) -> anyhow::Result<()> {
    let store = OpenStore::open(config).await?;
    let result = clients_with(config, &store, command).await;
    store.close().await;
    result.context("clients")
}

async fn clients_with(
    config: &Config,
    store: &OpenStore,
    command: ClientsCommand,
) -> anyhow::Result<()> {
    let s = &store.store;
    match command {
        ClientsCommand::List { limit, after } => {
            let list = s
                .list_clients(after.as_deref(), limit)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let ids: Vec<String> = list.iter().map(|c| c.client_id.clone()).collect();
            let used = store
                .authn_stores()
                .usage
                .last_used(&ids)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "{:<28} {:<24} {:<12} {:<12} {:<12} IAT",
                "CLIENT_ID", "NAME", "CREATED_AT", "MANAGED_AT", "LAST_USED_AT"
            );
            for c in list {
                let name = c
                    .metadata
                    .get("client_name")
                    .and_then(|v| v.as_str())
                    .unwrap_or("-")
                    .chars()
                    .take(24)
                    .collect::<String>();
                println!(
                    "{:<28} {:<24} {:<12} {:<12} {:<12} {}",
                    c.client_id,
                    name,
                    c.created_at,
                    c.managed_at.map_or("-".to_owned(), |m| m.to_string()),
                    used.get(&c.client_id)
                        .map_or("-".to_owned(), |m| m.to_string()),
                    c.initial_access_token_id.as_deref().unwrap_or("-"),
                );
            }
            Ok(())
        }
        ClientsCommand::Show {
            client_id,
            show_secret,
        } => {
            let c = s
                .get_client(&client_id)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .with_context(|| format!("no client with id {client_id}"))?;
            let mut metadata = c.metadata.as_map().clone();
            if !show_secret && metadata.contains_key("client_secret") {
                metadata.insert("client_secret".into(), "[redacted]".into());
            }
            let out = serde_json::json!({
                "client_id": c.client_id,
                "created_at": c.created_at,
                "updated_at": c.updated_at,
                "managed_at": c.managed_at,
                "last_used_at": store.authn_stores().usage.last_used(std::slice::from_ref(&c.client_id)).await.map_err(|e| anyhow::anyhow!("{e}"))?.get(&c.client_id),
                "initial_access_token_id": c.initial_access_token_id,
                "metadata": metadata,
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(())
        }
        ClientsCommand::Delete { client_id } => {
            // Through the registrar, which records the deletion as a `dcr::audit` event.
            let registrar = build_registrar(config, store)?;
            let deleted = registrar
                .delete_by_operator(&client_id, "cli")
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            anyhow::ensure!(deleted, "no client with id {client_id}");
            crate::admin_authn::record_removed(config, store, &[(client_id.clone(), 0)]).await;
            println!("deleted {client_id}");
            Ok(())
        }
        ClientsCommand::Prune { dry_run } => {
            let rules = config.registration.prune.rules();
            anyhow::ensure!(
                rules != PruneRules::default(),
                "registration.prune sets neither max_unmanaged_open_clients nor max_unmanaged_age_seconds"
            );
            let registrar = build_registrar(config, store)?;
            let gone = registrar
                .prune(rules, dry_run)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            if !dry_run {
                crate::admin_authn::record_removed(config, store, &gone).await;
            }
            for (id, created_at) in &gone {
                println!("{id} {created_at}");
            }
            eprintln!(
                "{} {} unmanaged open client(s)",
                if dry_run { "would prune" } else { "pruned" },
                gone.len()
            );
            Ok(())
        }
    }
}

async fn iat(config: &Config, command: IatCommand) -> anyhow::Result<()> {
    anyhow::ensure!(
        config.registration.initial_access_token == InitialAccessTokenSetting::Enabled(true),
        "initial access tokens are kept in the store only when registration.initial_access_token = true"
    );
    anyhow::ensure!(
        StorageKind::parse(config)? != StorageKind::Memory,
        "storage.url is memory: tokens minted here would vanish when this command exits; use a persistent store"
    );
    let store = OpenStore::open(config).await?;
    let registrar = build_registrar(config, &store)?;
    let result: anyhow::Result<()> = match command {
        IatCommand::Create {
            policies,
            expires_in,
            max_uses,
            label,
        } => {
            let (record, token) = registrar
                .mint_initial_access_token(MintInitialAccessToken {
                    policies,
                    expires_in,
                    max_uses,
                    label,
                })
                .await
                .map_err(|e| anyhow::anyhow!("{}", e.description()))?;
            eprintln!("minted initial access token {}", record.id);
            println!("{}", token.expose());
            Ok(())
        }
        IatCommand::List => {
            let tokens = registrar
                .list_initial_access_tokens()
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "{:<18} {:<20} {:<24} {:<12} USES_LEFT",
                "ID", "LABEL", "POLICIES", "EXPIRES_AT"
            );
            for t in tokens {
                println!(
                    "{:<18} {:<20} {:<24} {:<12} {}",
                    t.id,
                    t.label.as_deref().unwrap_or("-"),
                    if t.policies.is_empty() {
                        "-".to_owned()
                    } else {
                        t.policies.join(",")
                    },
                    t.expires_at.map_or("never".to_owned(), |e| e.to_string()),
                    t.uses_left()
                        .map_or("unlimited".to_owned(), |u| u.to_string()),
                );
            }
            Ok(())
        }
        IatCommand::Revoke { id } => {
            let revoked = registrar
                .revoke_initial_access_token(&id)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            anyhow::ensure!(revoked, "no initial access token with id {id}");
            println!("revoked {id}");
            Ok(())
        }
    };
    store.close().await;
    result.context("iat")
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::{Cli, ClientsCommand, Command};

    #[test]
    fn client_ids_may_start_with_a_hyphen() {
        // nanoid's alphabet has `-`: one generated id in 64 starts with it.
        let cli = Cli::try_parse_from(["dcr", "clients", "show", "-Qx", "--show-secret"])
            .expect("parsed");
        let Command::Clients(ClientsCommand::Show {
            client_id,
            show_secret,
        }) = cli.command
        else {
            panic!("not `clients show`: {cli:?}");
        };
        assert_eq!(client_id, "-Qx");
        assert!(show_secret);
        let cli = Cli::try_parse_from(["dcr", "clients", "delete", "--", "-Qx"]).expect("parsed");
        assert!(matches!(
            cli.command,
            Command::Clients(ClientsCommand::Delete { client_id }) if client_id == "-Qx"
        ));
        let cli = Cli::try_parse_from(["dcr", "clients", "delete", "-Qx"]).expect("parsed");
        assert!(matches!(
            cli.command,
            Command::Clients(ClientsCommand::Delete { client_id }) if client_id == "-Qx"
        ));
    }
}
