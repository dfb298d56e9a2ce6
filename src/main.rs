//! The `tanya` command line: a thin layer over [`tanya::Engine`]. This file only parses
//! the arguments and dispatches to `cli/`, one file per subcommand. Only this binary uses
//! `anyhow`; it prints errors with their causes and picks the exit code (2 for the
//! user's mistakes, 1 for ours).

mod cli;

use clap::Parser;
use cli::{Cli, Command};
use tanya::config::Config;

fn main() {
    // libgomp reads OMP_WAIT_POLICY before main runs; spinning OpenMP threads make
    // generation several times slower on a busy 2-core machine. Re-exec once with it set.
    if let Err(e) = tanya::engine::ensure_passive_openmp() {
        eprintln!("warning: could not restart with OMP_WAIT_POLICY=PASSIVE: {e}");
    }
    let cli = Cli::parse();
    cli::init_logging(cli.verbose);
    if let Err(err) = run(cli) {
        eprintln!("error: {err:#}");
        // By errno anywhere in the chain (a store or tantivy failing on a full disk
        // included), never by message text.
        let disk_full = err.chain().any(|e| {
            e.downcast_ref::<tanya::Error>()
                .is_some_and(tanya::Error::is_disk_full)
                || e.downcast_ref::<std::io::Error>()
                    .is_some_and(tanya::error::is_disk_full)
        });
        if disk_full {
            eprintln!(
                "  The disk holding the data directory is full. Documents indexed before this \
                 stay searchable; free some space and run the same command again to continue."
            );
        }
        let user = err
            .chain()
            .find_map(|e| e.downcast_ref::<tanya::Error>())
            .is_some_and(|e| e.is_user_error());
        std::process::exit(if user { 2 } else { 1 });
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::ParseWorker(args) = cli.command {
        // No configuration, no models: only the parser runs here.
        std::process::exit(cli::parse_worker::run(args));
    }
    let mut config = Config::load(cli.config.as_deref())?;
    if let Some(dir) = cli.data_dir {
        config.paths.data_dir = dir;
    }
    match cli.command {
        Command::Ingest(args) => cli::ingest::run(config, args),
        Command::Search(args) => cli::search::run(config, args),
        Command::Ask(args) => cli::ask::run(config, args),
        Command::Serve(args) => cli::serve::run(config, args),
        Command::Reindex => cli::reindex::run(config),
        Command::Migrate(args) => cli::migrate::run(config, args),
        Command::Eval { what } => cli::eval::run(config, what),
        Command::Documents(args) => cli::documents::run(config, args),
        Command::Backup(args) => cli::backup::backup(config, args),
        Command::Restore(args) => cli::backup::restore(config, args),
        Command::Config => cli::config::run(&config),
        Command::Bench(args) => cli::bench::run(config, args),
        Command::Users { what } => cli::users::run_users(config, what),
        Command::Tokens { what } => cli::users::run_tokens(config, what),
        Command::ParseWorker(_) => unreachable!("handled before the configuration is read"),
    }
}
