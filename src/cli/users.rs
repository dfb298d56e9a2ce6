//! `tanya users …` and `tanya tokens …`: the accounts in the data directory's database
//! (`tanya::accounts`). They open only that database, never the index, so they work while
//! `tanya serve` runs. Passwords are read from the terminal (twice) or, for scripts, one
//! line of standard input with `--password-stdin`; never from an argument, where other
//! users of the machine could read it.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::Context;
use tanya::accounts::{Accounts, Role};
use tanya::config::Config;

#[derive(clap::Subcommand)]
pub enum UsersCommand {
    /// Add a user.
    Add {
        name: String,
        /// admin, editor or reader.
        #[arg(long, default_value = "reader")]
        role: String,
        /// Shorthand for --role admin.
        #[arg(long)]
        admin: bool,
        /// Access groups, comma-separated (matched exactly: "HR" is not "hr").
        #[arg(long, value_delimiter = ',')]
        groups: Vec<String>,
        /// Read the password from one line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List the users.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Set a user's password (ends their sessions).
    Passwd {
        name: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Change a user's role, groups or whether they may sign in.
    Set {
        name: String,
        #[arg(long)]
        role: Option<String>,
        /// Replace the user's groups (comma-separated; an empty value clears them).
        #[arg(long, value_delimiter = ',')]
        groups: Option<Vec<String>>,
        #[arg(long, conflicts_with = "enable")]
        disable: bool,
        #[arg(long)]
        enable: bool,
    },
    /// Remove a user with their sessions and tokens.
    Remove { name: String },
}

#[derive(clap::Subcommand)]
pub enum TokensCommand {
    /// Create an API token for a user; the token is printed once and not stored.
    Create {
        user: String,
        /// What the token is for.
        #[arg(long, default_value = "")]
        label: String,
        /// The role it acts as (at most the user's own).
        #[arg(long, default_value = "reader")]
        role: String,
    },
    /// List the tokens (never their secrets).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by its id.
    Revoke { id: i64 },
}

fn open(config: &Config) -> anyhow::Result<Accounts> {
    Ok(Accounts::open_with(&config.paths.data_dir, &config.shared)?)
}

/// A new password: typed twice at a terminal, or one line of standard input.
fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if from_stdin || !stdin.is_terminal() {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_string());
    }
    let first = prompt_hidden("New password: ")?;
    let second = prompt_hidden("Again: ")?;
    if first != second {
        anyhow::bail!(tanya::Error::BadRequest(
            "the two passwords differ".to_string()
        ));
    }
    Ok(first)
}

/// Reads a line from the terminal with echo off.
fn prompt_hidden(prompt: &str) -> anyhow::Result<String> {
    eprint!("{prompt}");
    std::io::stderr().flush().ok();
    let fd = rustix::stdio::stdin();
    let old = rustix::termios::tcgetattr(fd).context("reading the terminal's settings")?;
    let mut quiet = old.clone();
    quiet.local_modes.remove(rustix::termios::LocalModes::ECHO);
    rustix::termios::tcsetattr(fd, rustix::termios::OptionalActions::Now, &quiet)
        .context("turning echo off")?;
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    let _ = rustix::termios::tcsetattr(fd, rustix::termios::OptionalActions::Now, &old);
    eprintln!();
    read.context("reading the password")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

fn print_user(u: &tanya::accounts::User) {
    println!(
        "{}  {}  groups: {}{}",
        u.name,
        u.role.as_str(),
        u.groups.join(","),
        if u.disabled { "  (disabled)" } else { "" }
    );
}

pub fn run_users(config: Config, command: UsersCommand) -> anyhow::Result<()> {
    let accounts = open(&config)?;
    match command {
        UsersCommand::Add {
            name,
            role,
            admin,
            groups,
            password_stdin,
        } => {
            let role = if admin { Role::Admin } else { role.parse()? };
            let password = read_password(password_stdin)?;
            let u = accounts.add_user(&name, &password, role, &groups)?;
            println!(
                "added {} ({}, groups: {})",
                u.name,
                u.role.as_str(),
                if u.groups.is_empty() {
                    "none".to_string()
                } else {
                    u.groups.join(",")
                }
            );
        }
        UsersCommand::List { json } => {
            let users = accounts.users()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&users)?);
            } else {
                for u in &users {
                    print_user(u);
                }
                println!("{} users", users.len());
            }
        }
        UsersCommand::Passwd {
            name,
            password_stdin,
        } => {
            let password = read_password(password_stdin)?;
            accounts.set_password(&name, &password)?;
            println!("password of {name} changed; their sessions are ended");
        }
        UsersCommand::Set {
            name,
            role,
            groups,
            disable,
            enable,
        } => {
            if let Some(role) = role {
                accounts.set_role(&name, role.parse()?)?;
            }
            if let Some(groups) = groups {
                let groups: Vec<String> = groups.into_iter().filter(|g| !g.is_empty()).collect();
                accounts.set_groups(&name, &groups)?;
            }
            if disable || enable {
                accounts.set_disabled(&name, disable)?;
            }
            let u = accounts
                .user(&name)?
                .ok_or_else(|| tanya::Error::BadRequest(format!("no user named `{name}`")))?;
            print_user(&u);
        }
        UsersCommand::Remove { name } => {
            accounts.remove_user(&name)?;
            println!("removed {name}");
        }
    }
    Ok(())
}

pub fn run_tokens(config: Config, command: TokensCommand) -> anyhow::Result<()> {
    let accounts = open(&config)?;
    match command {
        TokensCommand::Create { user, label, role } => {
            let t = accounts.create_token(&user, &label, role.parse()?)?;
            eprintln!("token {} for {user}; it is shown only now:", t.id);
            println!("{}", t.secret);
        }
        TokensCommand::List { json } => {
            let tokens = accounts.tokens()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&tokens)?);
            } else {
                for t in &tokens {
                    println!(
                        "{}  {}  {}  {:?}{}",
                        t.id,
                        t.user,
                        t.role.as_str(),
                        t.label,
                        if t.revoked { "  (revoked)" } else { "" }
                    );
                }
                println!("{} tokens", tokens.len());
            }
        }
        TokensCommand::Revoke { id } => {
            accounts.revoke_token(id)?;
            println!("token {id} revoked");
        }
    }
    Ok(())
}
