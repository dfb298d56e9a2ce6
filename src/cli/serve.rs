//! `tanya serve`: the page, the JSON API and the OpenAI-compatible endpoint.

use std::io::Write;
use std::sync::Arc;

use tanya::accounts::Accounts;
use tanya::config::Config;
use tanya::Engine;

#[derive(clap::Args)]
pub struct Args {
    /// Address to listen on (overrides server.bind), e.g. 127.0.0.1:8080; port 0
    /// picks a free one.
    #[arg(long)]
    bind: Option<String>,
}

pub fn run(config: Config, args: Args) -> anyhow::Result<()> {
    let bind = args.bind.unwrap_or_else(|| config.server.bind.clone());
    let engine = Arc::new(Engine::open(config)?);
    // The very first start makes an administrator (its password goes to a file only).
    let admin_name = engine.config().server.first_admin.clone();
    let first_admin = Accounts::open_with(engine.data_dir(), &engine.config().shared)?
        .ensure_first_admin_file(&admin_name)?
        .map(|file| (admin_name, file));
    let documents = engine.manifest().documents.len();
    tanya::server::serve(engine, &bind, |addr, https| {
        let shown = if addr.ip().is_unspecified() {
            let scheme = if https { "https" } else { "http" };
            format!("{scheme}://localhost:{}/", addr.port())
        } else {
            format!("{}/", tanya::server::local::url_of(addr, https))
        };
        // Written, not println!: a closed stdout (`tanya serve | head -1`) must not stop
        // the server.
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "Tanya is serving on {shown}");
        let _ = writeln!(
            out,
            "  {documents} documents indexed; open the address in your browser. Ctrl+C stops."
        );
        if let Some((name, file)) = &first_admin {
            let _ = writeln!(
                out,
                "  First start: sign in as `{name}` with the password in {}\n  \
                 (change it on the page; add people there or with `tanya users add`).",
                file.display()
            );
        }
        let _ = out.flush();
    })?;
    Ok(())
}
