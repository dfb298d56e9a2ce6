//! People and what they may do: users, their role and access groups, sign-in sessions and
//! API tokens, and their saved conversations (`conversations`). By default in an embedded
//! SQLite database (`accounts.db` in the data directory); with `[shared] postgres`, in
//! that PostgreSQL database, so that every replica knows the same people and sessions
//! (`db` keeps the two apart; the logic here is written once for both).
//!
//! - The schema is migrated on open (SQLite: `PRAGMA user_version` counts the migrations
//!   run; PostgreSQL: the `accounts` part of the shared schema), each migration in one
//!   transaction; SQLite runs in WAL mode with full fsync, so a crash loses at most the
//!   write in flight and never leaves half of one.
//! - Passwords are stored as argon2id hashes (PHC strings), never in clear; a wrong name
//!   costs the same hash as a wrong password.
//! - Session and API-token secrets are 32 random bytes shown once; only their SHA-256 is
//!   stored, so a copy of the database gives no way in.
//! - Group names are compared byte for byte: "HR-1", "hr-1", "HR-10" and a Cyrillic
//!   "НR-1" are four different groups.
//! - The first open of a PostgreSQL database without users copies the data directory's
//!   SQLite accounts into it, once.
//!
//! Both databases handle their own locking, so `tanya users …` works while `tanya serve`
//! runs.

use std::path::{Path, PathBuf};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::shared::Pg;

mod conversations;
mod db;
pub use conversations::{ConversationInfo, StoredTurn, MAX_TITLE_CHARS};

use db::{Arg, Db, Sql};

/// The database's file name in the data directory.
pub const FILE: &str = "accounts.db";

/// Where the first start leaves the first administrator's password (readable by the
/// owner only), beside the database; removed when that password is changed.
pub const FIRST_PASSWORD_FILE: &str = "first-admin-password.txt";

/// Shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 10;

/// What a person may do. An editor may also do what a reader may; an admin, everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Reader,
    Editor,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Editor => "editor",
            Role::Admin => "admin",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "reader" => Ok(Role::Reader),
            "editor" => Ok(Role::Editor),
            "admin" => Ok(Role::Admin),
            other => Err(Error::BadRequest(format!(
                "unknown role `{other}` (expected admin, editor or reader)"
            ))),
        }
    }
}

/// One account, without its password hash.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub role: Role,
    /// Access groups, sorted.
    pub groups: Vec<String>,
    pub disabled: bool,
    /// Seconds since the Unix epoch.
    pub created_at: i64,
}

/// An API token as listed (its secret is never stored).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TokenInfo {
    pub id: i64,
    pub user: String,
    pub label: String,
    pub role: Role,
    pub created_at: i64,
    pub revoked: bool,
}

/// A token just created: its secret is shown once, here.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub id: i64,
    pub secret: String,
}

/// The accounts database: SQLite in the data directory, or the shared PostgreSQL.
pub struct Accounts {
    db: Db,
    /// The SQLite file (for PostgreSQL, where it would be: the first administrator's
    /// password file goes beside it).
    path: PathBuf,
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// 32 random bytes from the operating system, as 43 URL-safe characters.
fn new_secret() -> Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| Error::Accounts {
        context: format!("no randomness from the operating system: {e}"),
        source: None,
    })?;
    Ok(base64_url(&bytes))
}

fn base64_url(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len() * 4 / 3 + 2);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

fn secret_hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// The CSRF token of a session: derived from its secret, so the server needs to store
/// nothing more, and a page on another site (which cannot read the `HttpOnly` cookie)
/// cannot know it.
pub fn csrf_token(session_secret: &str) -> String {
    base64_url(&Sha256::digest(
        format!("tanya-csrf\0{session_secret}").as_bytes(),
    ))
}

/// A random secret: 32 bytes from the operating system as 43 URL-safe characters.
pub fn random_secret() -> Result<String> {
    new_secret()
}

/// A random password for a first administrator: 20 URL-safe characters (120 bits).
pub fn random_password() -> Result<String> {
    Ok(new_secret()?[..20].to_string())
}

/// A user name: 1–64 of lowercase letters, digits, `.`, `_`, `-`, starting with a
/// letter or digit.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(Error::BadRequest(format!(
            "`{name}` is not a valid user name: use 1 to 64 lowercase letters, digits, `.`, `_` \
             or `-`, starting with a letter or a digit"
        )))
    }
}

/// A group name, as [`crate::config::valid_group`] says. Compared byte for byte.
pub fn check_group(group: &str) -> Result<()> {
    if crate::config::valid_group(group) {
        Ok(())
    } else {
        Err(Error::BadRequest(format!(
            "{group:?} is not a valid group name: 1 to 64 characters, no comma, no control \
             characters, no surrounding spaces"
        )))
    }
}

fn check_password(password: &str) -> Result<()> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(Error::BadRequest(format!(
            "the password is too short: use at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    Ok(())
}

fn hash_password(password: &str) -> Result<String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| Error::Accounts {
        context: format!("no randomness from the operating system: {e}"),
        source: None,
    })?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| Error::Accounts {
        context: format!("encoding a salt: {e}"),
        source: None,
    })?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Accounts {
            context: format!("hashing a password: {e}"),
            source: None,
        })
}

fn password_matches(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

impl Accounts {
    /// Opens (creating if needed) the SQLite database in `data_dir` and brings its schema
    /// up to date.
    pub fn open(data_dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| Error::io(format!("creating {}", data_dir.display()), e))?;
        let path = data_dir.join(FILE);
        let db = Db::open_sqlite(&path)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // Hashes only, but nobody else's business.
            let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
        }
        Ok(Accounts { db, path })
    }

    /// The accounts `shared` says: in its PostgreSQL database when `[shared] postgres`
    /// is set ([`Accounts::open_postgres`]), else in `data_dir` ([`Accounts::open`]).
    pub fn open_with(data_dir: &Path, shared: &crate::config::SharedConfig) -> Result<Self> {
        if shared.enabled() {
            Accounts::open_postgres(shared.postgres.expose(), data_dir)
        } else {
            Accounts::open(data_dir)
        }
    }

    /// The accounts in the PostgreSQL database at `url`, brought up to date. When that
    /// database holds no user yet and `data_dir` has an accounts database with users,
    /// those users, their groups and tokens, and their conversations are copied into it
    /// once, in one transaction (sessions are not: people sign in again). `data_dir`
    /// also keeps the first administrator's password file.
    pub fn open_postgres(url: &str, data_dir: &Path) -> Result<Self> {
        let accounts = Accounts {
            db: Db::open_postgres(Pg::connect(url)?)?,
            path: data_dir.join(FILE),
        };
        if accounts.path.exists() && !accounts.db.run(has_users)? {
            let local = Accounts::open(data_dir)?;
            if let Some(counts) = db::import(&local.db, &accounts.db)? {
                let count = |t: &str| counts.iter().find(|c| c.0 == t).map_or(0, |c| c.1);
                tracing::info!(
                    users = count("users"),
                    groups = count("user_groups"),
                    tokens = count("tokens"),
                    conversations = count("conversations"),
                    turns = count("turns"),
                    from = %accounts.path.display(),
                    "copied the data directory's accounts into the shared PostgreSQL \
                     database; that file is no longer used"
                );
            }
        }
        Ok(accounts)
    }

    /// The SQLite database file; an error when the accounts are in PostgreSQL.
    pub fn path(&self) -> Result<&Path> {
        match self.db {
            Db::Sqlite(_) => Ok(&self.path),
            Db::Postgres(_) => Err(db::not_in_data_dir()),
        }
    }

    /// Whether the accounts are in the shared PostgreSQL database.
    pub fn is_shared(&self) -> bool {
        matches!(self.db, Db::Postgres(_))
    }

    /// Runs `f` with the database, each statement on its own.
    fn run<T: Send>(&self, f: impl Fn(&mut dyn Sql) -> Result<T> + Send + Sync) -> Result<T> {
        self.db.run(f)
    }

    /// Runs `f` in one write transaction (taken at once, so that two writers never
    /// interleave, also on different replicas) and commits it; nothing of it stays when
    /// `f` fails.
    fn write<T: Send>(&self, f: impl Fn(&mut dyn Sql) -> Result<T> + Send + Sync) -> Result<T> {
        self.db.write(f)
    }

    /// Adds a user. The name must be new.
    pub fn add_user(
        &self,
        name: &str,
        password: &str,
        role: Role,
        groups: &[String],
    ) -> Result<User> {
        check_name(name)?;
        check_password(password)?;
        for g in groups {
            check_group(g)?;
        }
        let hash = hash_password(password)?;
        self.write(|db| {
            let exists = db
                .one::<i64>(
                    "looking up a user",
                    "SELECT id FROM users WHERE name = $1",
                    &[name.into()],
                )?
                .is_some();
            if exists {
                return Err(Error::BadRequest(format!("a user named `{name}` exists")));
            }
            let id = db
                .one::<i64>(
                    "adding a user",
                    "INSERT INTO users (name, password_hash, role, created_at)
                     VALUES ($1, $2, $3, $4) RETURNING id",
                    &[
                        name.into(),
                        hash.as_str().into(),
                        role.as_str().into(),
                        now().into(),
                    ],
                )?
                .unwrap_or_default();
            insert_groups(db, id, groups)
        })?;
        self.user(name)?
            .ok_or_else(|| Error::BadRequest(format!("no user named `{name}`")))
    }

    /// The user named `name`, if any.
    pub fn user(&self, name: &str) -> Result<Option<User>> {
        self.run(|db| Ok(users_where(db, "name = $1", &[name.into()])?.pop()))
    }

    /// Every user, by name.
    pub fn users(&self) -> Result<Vec<User>> {
        self.run(|db| users_where(db, "1 = 1", &[]))
    }

    /// Whether any admin exists (the first start creates one when none does).
    pub fn has_admin(&self) -> Result<bool> {
        self.run(|db| {
            Ok(db
                .one(
                    "looking for an admin",
                    "SELECT EXISTS (SELECT 1 FROM users WHERE role = 'admin' AND NOT disabled)",
                    &[],
                )?
                .unwrap_or(false))
        })
    }

    /// Writes a consistent copy of the database to `dest` (which must not exist), while
    /// it stays in use (`VACUUM INTO`). The shared accounts are PostgreSQL's to back up
    /// (`pg_dump`): for them this is an error that says so.
    pub fn copy_to(&self, dest: &Path) -> Result<()> {
        self.db.copy_to(dest)
    }

    /// On a database without an enabled administrator, adds the administrator `name`
    /// with a random password, writes it to [`FIRST_PASSWORD_FILE`] (mode 0600, never to
    /// a log) and returns that file's path; `None` when an administrator exists.
    pub fn ensure_first_admin_file(&self, name: &str) -> Result<Option<PathBuf>> {
        let Some(password) = self.ensure_first_admin(name)? else {
            return Ok(None);
        };
        let file = self.first_password_file();
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&file)?;
            writeln!(f, "{password}")?;
            f.sync_all()
        };
        write().map_err(|e| Error::io(format!("writing {}", file.display()), e))?;
        Ok(Some(file))
    }

    fn first_password_file(&self) -> PathBuf {
        self.path.with_file_name(FIRST_PASSWORD_FILE)
    }

    /// On a database without an enabled administrator, adds the administrator `name`
    /// with a random password and returns it (to be shown once); `None` when one exists.
    pub fn ensure_first_admin(&self, name: &str) -> Result<Option<String>> {
        if self.has_admin()? {
            return Ok(None);
        }
        let password = random_password()?;
        let added = match self.user(name)? {
            Some(_) => Err(Error::BadRequest(format!(
                "there is no enabled administrator, and the name `{name}` is taken: make one \
                 with `tanya users add NAME --admin`"
            ))),
            None => self.add_user(name, &password, Role::Admin, &[]),
        };
        match added {
            Ok(_) => Ok(Some(password)),
            // Another replica sharing the accounts made one meanwhile.
            Err(_) if self.has_admin()? => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Sets `name`'s password and ends every session of theirs.
    /// When the password was the first administrator's from [`FIRST_PASSWORD_FILE`],
    /// that file is removed.
    pub fn set_password(&self, name: &str, password: &str) -> Result<()> {
        check_password(password)?;
        let hash = hash_password(password)?;
        let first = self.first_password_file();
        let was_first = std::fs::read_to_string(&first).ok().is_some_and(|p| {
            self.verify_password(name, p.trim())
                .ok()
                .flatten()
                .is_some()
        });
        self.write(|db| {
            let id = user_id(db, name)?;
            db.exec(
                "setting a password",
                "UPDATE users SET password_hash = $1 WHERE id = $2",
                &[hash.as_str().into(), id.into()],
            )?;
            end_sessions(db, id)
        })?;
        if was_first {
            let _ = std::fs::remove_file(&first);
        }
        Ok(())
    }

    /// Sets `name`'s role.
    pub fn set_role(&self, name: &str, role: Role) -> Result<()> {
        self.run(|db| {
            let id = user_id(db, name)?;
            db.exec(
                "setting a role",
                "UPDATE users SET role = $1 WHERE id = $2",
                &[role.as_str().into(), id.into()],
            )?;
            Ok(())
        })
    }

    /// Replaces `name`'s access groups.
    pub fn set_groups(&self, name: &str, groups: &[String]) -> Result<()> {
        for g in groups {
            check_group(g)?;
        }
        self.write(|db| {
            let id = user_id(db, name)?;
            db.exec(
                "clearing groups",
                "DELETE FROM user_groups WHERE user_id = $1",
                &[id.into()],
            )?;
            insert_groups(db, id, groups)
        })
    }

    /// Disables or re-enables `name`; disabling ends their sessions and stops their
    /// tokens from working.
    pub fn set_disabled(&self, name: &str, disabled: bool) -> Result<()> {
        self.write(|db| {
            let id = user_id(db, name)?;
            db.exec(
                "disabling a user",
                "UPDATE users SET disabled = $1 WHERE id = $2",
                &[disabled.into(), id.into()],
            )?;
            if disabled {
                end_sessions(db, id)?;
            }
            Ok(())
        })
    }

    /// Removes `name` with their sessions and tokens.
    pub fn remove_user(&self, name: &str) -> Result<()> {
        self.run(|db| {
            let id = user_id(db, name)?;
            db.exec(
                "removing a user",
                "DELETE FROM users WHERE id = $1",
                &[id.into()],
            )?;
            Ok(())
        })
    }

    /// The user whose name and password these are, if enabled. A missing user costs the
    /// same argon2 work as a wrong password.
    pub fn verify_password(&self, name: &str, password: &str) -> Result<Option<User>> {
        let stored = self.run(|db| {
            db.row(
                "looking up a user",
                "SELECT password_hash, disabled FROM users WHERE name = $1",
                &[name.into()],
            )?
            .map(|r| Ok((r.get::<String>(0)?, r.get::<bool>(1)?)))
            .transpose()
        })?;
        match stored {
            Some((hash, disabled)) => {
                if password_matches(password, &hash) && !disabled {
                    self.user(name)
                } else {
                    Ok(None)
                }
            }
            None => {
                // The same work as a real check, so that timing does not tell which
                // names exist.
                let _ = password_matches(password, dummy_hash());
                Ok(None)
            }
        }
    }

    /// Starts a session for `user_id` lasting `ttl_secs`; returns its secret.
    pub fn create_session(&self, user_id: i64, ttl_secs: i64) -> Result<String> {
        let secret = new_secret()?;
        let hash = secret_hash(&secret);
        let t = now();
        self.run(|db| {
            db.exec(
                "starting a session",
                "INSERT INTO sessions (secret_hash, user_id, created_at, expires_at)
                 VALUES ($1, $2, $3, $4)",
                &[
                    (&hash).into(),
                    user_id.into(),
                    t.into(),
                    (t + ttl_secs).into(),
                ],
            )
        })?;
        Ok(secret)
    }

    /// The enabled user of an unexpired session.
    pub fn session_user(&self, secret: &str) -> Result<Option<User>> {
        let hash = secret_hash(secret);
        let t = now();
        self.run(|db| {
            Ok(users_where(
                db,
                "NOT disabled AND id = (SELECT user_id FROM sessions
                                        WHERE secret_hash = $1 AND expires_at > $2)",
                &[(&hash).into(), t.into()],
            )?
            .pop())
        })
    }

    /// Ends a session (signing out). Unknown secrets are ignored.
    pub fn end_session(&self, secret: &str) -> Result<()> {
        let hash = secret_hash(secret);
        let t = now();
        self.run(|db| {
            db.exec(
                "ending a session",
                "DELETE FROM sessions WHERE secret_hash = $1 OR expires_at <= $2",
                &[(&hash).into(), t.into()],
            )
        })?;
        Ok(())
    }

    /// Creates an API token for `name`, acting with at most `role` (never more than the
    /// user's own). Returns its id and the secret, which is not stored.
    pub fn create_token(&self, name: &str, label: &str, role: Role) -> Result<NewToken> {
        let user = self
            .user(name)?
            .ok_or_else(|| Error::BadRequest(format!("no user named `{name}`")))?;
        if role > user.role {
            return Err(Error::BadRequest(format!(
                "a token of `{name}` ({}) cannot act as {}",
                user.role.as_str(),
                role.as_str()
            )));
        }
        let secret = format!("tanya_{}", new_secret()?);
        let hash = secret_hash(&secret);
        let t = now();
        let id = self.run(|db| {
            db.one::<i64>(
                "creating a token",
                "INSERT INTO tokens (secret_hash, user_id, label, role, created_at)
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
                &[
                    (&hash).into(),
                    user.id.into(),
                    label.into(),
                    role.as_str().into(),
                    t.into(),
                ],
            )
        })?;
        Ok(NewToken {
            id: id.unwrap_or_default(),
            secret,
        })
    }

    /// The enabled user of an unrevoked token, with the role the token acts as.
    pub fn token_user(&self, secret: &str) -> Result<Option<(User, Role)>> {
        let hash = secret_hash(secret);
        self.run(|db| {
            let row = db.row(
                "looking up a token",
                "SELECT user_id, role FROM tokens WHERE secret_hash = $1 AND revoked_at IS NULL",
                &[(&hash).into()],
            )?;
            let Some(row) = row else {
                return Ok(None);
            };
            let (user_id, role) = (row.get::<i64>(0)?, row.get::<String>(1)?);
            let user = users_where(db, "NOT disabled AND id = $1", &[user_id.into()])?.pop();
            // The user's role may have been lowered since: the token never acts above it.
            Ok(user.map(|u| {
                let role = role.parse::<Role>().unwrap_or(Role::Reader).min(u.role);
                (u, role)
            }))
        })
    }

    /// Revokes token `id`.
    pub fn revoke_token(&self, id: i64) -> Result<()> {
        let t = now();
        let n = self.run(|db| {
            db.exec(
                "revoking a token",
                "UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
                &[t.into(), id.into()],
            )
        })?;
        if n == 0 {
            return Err(Error::BadRequest(format!("no active token with id {id}")));
        }
        Ok(())
    }

    /// Every token, newest first.
    pub fn tokens(&self) -> Result<Vec<TokenInfo>> {
        let rows = self.run(|db| {
            db.rows(
                "listing tokens",
                "SELECT t.id, u.name, t.label, t.role, t.created_at, t.revoked_at IS NOT NULL
                 FROM tokens t JOIN users u ON u.id = t.user_id ORDER BY t.id DESC",
                &[],
            )
        })?;
        rows.iter()
            .map(|r| {
                Ok(TokenInfo {
                    id: r.get(0)?,
                    user: r.get(1)?,
                    label: r.get(2)?,
                    role: r.get::<String>(3)?.parse()?,
                    created_at: r.get(4)?,
                    revoked: r.get(5)?,
                })
            })
            .collect()
    }
}

/// An argon2id hash of a random password, checked when a name does not exist.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        new_secret()
            .and_then(|s| hash_password(&s))
            .unwrap_or_default()
    })
}

/// Whether the database holds any user.
fn has_users(db: &mut dyn Sql) -> Result<bool> {
    Ok(db
        .one::<i64>("looking for users", "SELECT id FROM users LIMIT 1", &[])?
        .is_some())
}

fn insert_groups(db: &mut dyn Sql, user_id: i64, groups: &[String]) -> Result<()> {
    for g in groups {
        db.exec(
            "setting a user's groups",
            "INSERT INTO user_groups (user_id, name) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[user_id.into(), g.as_str().into()],
        )?;
    }
    Ok(())
}

fn end_sessions(db: &mut dyn Sql, user_id: i64) -> Result<()> {
    db.exec(
        "ending sessions",
        "DELETE FROM sessions WHERE user_id = $1",
        &[user_id.into()],
    )?;
    Ok(())
}

fn user_id(db: &mut dyn Sql, name: &str) -> Result<i64> {
    db.one(
        "looking up a user",
        "SELECT id FROM users WHERE name = $1",
        &[name.into()],
    )?
    .ok_or_else(|| Error::BadRequest(format!("no user named `{name}`")))
}

/// The users for whom `cond` (over the columns of `users`) holds, by name, each with
/// their groups.
fn users_where(db: &mut dyn Sql, cond: &str, args: &[Arg<'_>]) -> Result<Vec<User>> {
    let rows = db.rows(
        "reading users",
        &format!(
            "SELECT id, name, role, disabled, created_at FROM users WHERE {cond} ORDER BY name"
        ),
        args,
    )?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let mut groups: std::collections::HashMap<i64, Vec<String>> = Default::default();
    for r in db.rows(
        "reading groups",
        &format!(
            "SELECT user_id, name FROM user_groups
             WHERE user_id IN (SELECT id FROM users WHERE {cond}) ORDER BY user_id, name"
        ),
        args,
    )? {
        groups.entry(r.get(0)?).or_default().push(r.get(1)?);
    }
    rows.iter()
        .map(|r| {
            let id = r.get(0)?;
            Ok(User {
                id,
                name: r.get(1)?,
                role: r.get::<String>(2)?.parse()?,
                groups: groups.remove(&id).unwrap_or_default(),
                disabled: r.get(3)?,
                created_at: r.get(4)?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Why the PostgreSQL tests are not run by default.
    macro_rules! needs_postgres {
        () => {
            "needs a PostgreSQL server: TANYA_TEST_POSTGRES (scripts/setup_postgres.sh)"
        };
    }
    pub(super) use needs_postgres;

    /// The admin URL of the test PostgreSQL server. A PostgreSQL test without it fails:
    /// it was asked for (`--include-ignored`), so skipping would hide that it never ran.
    pub(super) fn postgres_url() -> String {
        match std::env::var("TANYA_TEST_POSTGRES") {
            Ok(url) if !url.is_empty() => url,
            _ => panic!(
                "TANYA_TEST_POSTGRES is not set: start a test server with \
                 `scripts/setup_postgres.sh start` and set TANYA_TEST_POSTGRES to the URL it \
                 prints"
            ),
        }
    }

    /// Where a contract test's accounts live: a data directory, and for PostgreSQL a
    /// database of its own (dropped with the fixture).
    pub(super) struct Fixture {
        pub(super) dir: tempfile::TempDir,
        scratch: Option<crate::shared::ScratchDatabase>,
    }

    impl Fixture {
        pub(super) fn sqlite() -> Fixture {
            Fixture {
                dir: tempfile::tempdir().unwrap(),
                scratch: None,
            }
        }

        pub(super) fn postgres() -> Fixture {
            Fixture {
                dir: tempfile::tempdir().unwrap(),
                scratch: Some(crate::shared::ScratchDatabase::create(&postgres_url()).unwrap()),
            }
        }

        /// The accounts, opened (again) where this fixture keeps them.
        pub(super) fn open(&self) -> Accounts {
            match &self.scratch {
                None => Accounts::open(self.dir.path()),
                Some(db) => Accounts::open_postgres(db.url(), self.dir.path()),
            }
            .unwrap()
        }

        /// Whether `text` is anywhere in what the database stores.
        fn stores(&self, text: &str) -> bool {
            match &self.scratch {
                None => [FILE.to_string(), format!("{FILE}-wal")].iter().any(|f| {
                    std::fs::read(self.dir.path().join(f))
                        .is_ok_and(|raw| String::from_utf8_lossy(&raw).contains(text))
                }),
                Some(db) => {
                    let mut c = ::postgres::Client::connect(db.url(), ::postgres::NoTls).unwrap();
                    ["users", "user_groups", "sessions", "tokens"]
                        .iter()
                        .any(|t| {
                            c.query(&format!("SELECT CAST(x AS TEXT) FROM tanya_{t} x"), &[])
                                .unwrap()
                                .iter()
                                .any(|r| r.get::<_, String>(0).contains(text))
                        })
                }
            }
        }
    }

    /// Each contract test runs on SQLite under its own name, and on PostgreSQL as
    /// `postgres::<name>`.
    macro_rules! on_both_databases {
        ($($name:ident),* $(,)?) => {
            $(
                #[test]
                fn $name() {
                    contract::$name(&Fixture::sqlite());
                }
            )*
            mod postgres {
                use super::*;
                $(
                    #[test]
                    #[ignore = needs_postgres!()]
                    fn $name() {
                        contract::$name(&Fixture::postgres());
                    }
                )*
            }
        };
    }

    on_both_databases!(
        the_first_admin_is_made_once_with_a_random_password,
        the_first_password_file_goes_when_that_password_is_changed,
        users_passwords_and_reopening,
        sessions_end_with_sign_out_password_change_and_disabling,
        tokens_are_hashed_scoped_and_revocable,
        group_names_match_byte_for_byte,
    );

    fn groups(g: &[&str]) -> Vec<String> {
        g.iter().map(|s| s.to_string()).collect()
    }

    /// What both databases must do alike.
    mod contract {
        use super::*;

        pub fn the_first_admin_is_made_once_with_a_random_password(f: &Fixture) {
            let a = f.open();
            let password = a.ensure_first_admin("admin").unwrap().unwrap();
            assert_eq!(password.len(), 20);
            let u = a.verify_password("admin", &password).unwrap().unwrap();
            assert_eq!(u.role, Role::Admin);
            assert_eq!(a.ensure_first_admin("admin").unwrap(), None);
            // Disabled, the admin no longer counts, and its name is taken.
            a.set_disabled("admin", true).unwrap();
            assert!(a.ensure_first_admin("admin").is_err());
            assert!(a.ensure_first_admin("root").unwrap().is_some());
        }

        pub fn the_first_password_file_goes_when_that_password_is_changed(f: &Fixture) {
            let a = f.open();
            let file = a.ensure_first_admin_file("admin").unwrap().unwrap();
            assert_eq!(file, f.dir.path().join(FIRST_PASSWORD_FILE));
            let password = std::fs::read_to_string(&file).unwrap();
            assert!(a
                .verify_password("admin", password.trim())
                .unwrap()
                .is_some());
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
                0o600
            );
            assert_eq!(a.ensure_first_admin_file("admin").unwrap(), None);
            // Another person's new password leaves it; the admin's own removes it.
            a.add_user("siti", "kata-laluan-siti", Role::Reader, &[])
                .unwrap();
            a.set_password("siti", "kata-laluan-baru").unwrap();
            assert!(file.exists());
            a.set_password("admin", "kata-laluan-admin").unwrap();
            assert!(!file.exists());
        }

        pub fn users_passwords_and_reopening(f: &Fixture) {
            let a = f.open();
            assert!(!a.has_admin().unwrap());
            let u = a
                .add_user(
                    "aminah",
                    "kata-laluan-rahsia",
                    Role::Admin,
                    &groups(&["HR-1", "hr-1"]),
                )
                .unwrap();
            assert_eq!(u.groups, ["HR-1", "hr-1"]);
            assert!(a.has_admin().unwrap());
            assert!(a
                .verify_password("aminah", "kata-laluan-rahsia")
                .unwrap()
                .is_some());
            assert!(a
                .verify_password("aminah", "Kata-laluan-rahsia")
                .unwrap()
                .is_none());
            assert!(a
                .verify_password("nobody", "kata-laluan-rahsia")
                .unwrap()
                .is_none());
            // Duplicates, bad names, short passwords are the user's errors.
            for e in [
                a.add_user("aminah", "another-password", Role::Reader, &[]),
                a.add_user("Aminah", "another-password", Role::Reader, &[]),
                a.add_user("ali", "short", Role::Reader, &[]),
                a.add_user("ali", "another-password", Role::Reader, &groups(&["a,b"])),
            ] {
                assert!(e.unwrap_err().is_user_error());
            }
            // The password is stored as an argon2id hash only.
            drop(a);
            assert!(!f.stores("kata-laluan-rahsia"));
            assert!(f.stores("$argon2id$"));
            let a = f.open();
            assert_eq!(a.users().unwrap().len(), 1);
            a.set_password("aminah", "a-new-password").unwrap();
            assert!(a
                .verify_password("aminah", "kata-laluan-rahsia")
                .unwrap()
                .is_none());
            assert!(a
                .verify_password("aminah", "a-new-password")
                .unwrap()
                .is_some());
        }

        pub fn sessions_end_with_sign_out_password_change_and_disabling(f: &Fixture) {
            let a = f.open();
            let u = a
                .add_user(
                    "siti",
                    "kata-laluan-rahsia",
                    Role::Reader,
                    &groups(&["awam"]),
                )
                .unwrap();
            let s = a.create_session(u.id, 3600).unwrap();
            assert_eq!(a.session_user(&s).unwrap().unwrap().name, "siti");
            assert!(a.session_user("not-a-session").unwrap().is_none());
            a.end_session(&s).unwrap();
            assert!(a.session_user(&s).unwrap().is_none());
            let expired = a.create_session(u.id, -1).unwrap();
            assert!(a.session_user(&expired).unwrap().is_none());
            let s = a.create_session(u.id, 3600).unwrap();
            a.set_password("siti", "a-new-password").unwrap();
            assert!(a.session_user(&s).unwrap().is_none());
            let s = a.create_session(u.id, 3600).unwrap();
            a.set_disabled("siti", true).unwrap();
            assert!(a.session_user(&s).unwrap().is_none());
            assert!(a
                .verify_password("siti", "a-new-password")
                .unwrap()
                .is_none());
        }

        pub fn tokens_are_hashed_scoped_and_revocable(f: &Fixture) {
            let a = f.open();
            a.add_user(
                "ed",
                "kata-laluan-rahsia",
                Role::Editor,
                &groups(&["Kewangan"]),
            )
            .unwrap();
            assert!(a.create_token("ed", "too much", Role::Admin).is_err());
            let t = a.create_token("ed", "import script", Role::Reader).unwrap();
            assert!(t.secret.starts_with("tanya_") && t.secret.len() > 40);
            let (u, role) = a.token_user(&t.secret).unwrap().unwrap();
            assert_eq!((u.name.as_str(), role), ("ed", Role::Reader));
            assert!(f.stores("import script"));
            assert!(!f.stores(&t.secret));
            // A lowered user role caps the token.
            let t2 = a.create_token("ed", "uploads", Role::Editor).unwrap();
            assert!(t2.id > t.id);
            a.set_role("ed", Role::Reader).unwrap();
            assert_eq!(a.token_user(&t2.secret).unwrap().unwrap().1, Role::Reader);
            a.revoke_token(t.id).unwrap();
            assert!(a.token_user(&t.secret).unwrap().is_none());
            assert!(a.revoke_token(t.id).unwrap_err().is_user_error());
            let listed = a.tokens().unwrap();
            assert_eq!(
                listed
                    .iter()
                    .map(|t| (t.label.as_str(), t.role, t.revoked))
                    .collect::<Vec<_>>(),
                [
                    ("uploads", Role::Editor, false),
                    ("import script", Role::Reader, true)
                ]
            );
            a.remove_user("ed").unwrap();
            assert!(a.token_user(&t2.secret).unwrap().is_none());
            assert!(a.tokens().unwrap().is_empty());
            assert!(a.remove_user("ed").unwrap_err().is_user_error());
        }

        pub fn group_names_match_byte_for_byte(f: &Fixture) {
            let a = f.open();
            let set = groups(&["hr-1", "НR-1", "HR-10", "HR-1", "HR-1"]);
            let u = a
                .add_user("hana", "kata-laluan-rahsia", Role::Reader, &set)
                .unwrap();
            // Sorted byte for byte, duplicates once.
            assert_eq!(u.groups, ["HR-1", "HR-10", "hr-1", "НR-1"]);
            a.set_groups("hana", &groups(&["b", "B", "a"])).unwrap();
            assert_eq!(a.user("hana").unwrap().unwrap().groups, ["B", "a", "b"]);
            assert!(a.set_groups("nobody", &[]).unwrap_err().is_user_error());
            assert!(check_group(" HR").is_err());
            assert!(check_group("").is_err());
            // Users are listed by name, byte for byte too.
            for name in ["zed", "a.b", "a-b", "a_b", "0x"] {
                a.add_user(name, "kata-laluan-rahsia", Role::Reader, &[])
                    .unwrap();
            }
            let names: Vec<String> = a.users().unwrap().into_iter().map(|u| u.name).collect();
            assert_eq!(names, ["0x", "a-b", "a.b", "a_b", "hana", "zed"]);
        }
    }

    #[test]
    fn csrf_tokens_follow_the_session_secret() {
        assert_eq!(csrf_token("abc"), csrf_token("abc"));
        assert_ne!(csrf_token("abc"), csrf_token("abd"));
        assert_ne!(csrf_token("abc"), "abc");
        assert_eq!(csrf_token("abc").len(), 43);
    }

    #[test]
    fn secrets_are_url_safe_and_distinct() {
        let a = new_secret().unwrap();
        let b = new_secret().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert!(a
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_eq!(base64_url(b"foo"), "Zm9v");
    }

    #[test]
    fn without_shared_postgres_the_accounts_stay_in_the_data_directory() {
        let dir = tempfile::tempdir().unwrap();
        let shared = crate::config::Config::defaults().unwrap().shared;
        assert!(!shared.enabled());
        let a = Accounts::open_with(dir.path(), &shared).unwrap();
        assert!(!a.is_shared());
        assert_eq!(a.path().unwrap(), dir.path().join(FILE));
        a.add_user("siti", "kata-laluan-siti", Role::Reader, &[])
            .unwrap();
        a.copy_to(&dir.path().join("copy.db")).unwrap();
        let copy = tempfile::tempdir().unwrap();
        std::fs::rename(dir.path().join("copy.db"), copy.path().join(FILE)).unwrap();
        assert_eq!(
            Accounts::open(copy.path()).unwrap().users().unwrap().len(),
            1
        );
    }

    #[test]
    #[ignore = needs_postgres!()]
    fn postgres_accounts_are_opened_from_the_shared_config_and_not_copied_as_files() {
        let scratch = crate::shared::ScratchDatabase::create(&postgres_url()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut shared = crate::config::Config::defaults().unwrap().shared;
        shared.postgres = crate::config::Secret::new(scratch.url());
        let a = Accounts::open_with(dir.path(), &shared).unwrap();
        assert!(a.is_shared());
        a.add_user("siti", "kata-laluan-siti", Role::Reader, &[])
            .unwrap();
        let e = a.copy_to(&dir.path().join("copy.db")).unwrap_err();
        assert!(
            e.is_user_error() && e.to_string().contains("pg_dump"),
            "{e}"
        );
        assert!(a.path().unwrap_err().is_user_error());
        assert!(!dir.path().join(FILE).exists());
        assert!(!dir.path().join("copy.db").exists());
        // Names sort byte for byte whatever the database's own collation (the test
        // server's may already be C).
        let mut c = ::postgres::Client::connect(scratch.url(), ::postgres::NoTls).unwrap();
        let bytewise: Vec<String> = c
            .query(
                "SELECT table_name || '.' || column_name FROM information_schema.columns
                 WHERE table_name LIKE 'tanya\\_%' AND collation_name = 'C' ORDER BY 1",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        for column in ["tanya_user_groups.name", "tanya_users.name"] {
            assert!(bytewise.iter().any(|c| c == column), "{bytewise:?}");
        }
    }

    #[test]
    #[ignore = needs_postgres!()]
    fn postgres_takes_the_data_directorys_accounts_once() {
        let scratch = crate::shared::ScratchDatabase::create(&postgres_url()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let local = Accounts::open(dir.path()).unwrap();
        let siti = local
            .add_user(
                "siti",
                "kata-laluan-siti",
                Role::Editor,
                &groups(&["HR-1", "awam"]),
            )
            .unwrap();
        local
            .add_user("gone", "kata-laluan-gone", Role::Reader, &[])
            .unwrap();
        let ali = local
            .add_user("ali", "kata-laluan-ali2", Role::Admin, &[])
            .unwrap();
        local.remove_user("gone").unwrap();
        // An id left unused: the copy keeps the ids as they are.
        assert_eq!(ali.id, siti.id + 2);
        local.set_disabled("ali", true).unwrap();
        let kept = local.create_token("siti", "script", Role::Reader).unwrap();
        let revoked = local.create_token("siti", "old", Role::Editor).unwrap();
        local.revoke_token(revoked.id).unwrap();
        // Two conversations updated in the same second keep their order.
        local
            .add_turn(siti.id, "c1", "Berapa hari cuti?", "14 hari", "{}")
            .unwrap();
        local
            .add_turn(siti.id, "c2", "Kalau sakit?", "22 hari", "{\"x\":1}")
            .unwrap();
        local
            .add_turn(siti.id, "c2", "Dan cuti bersalin?", "98 hari", "{}")
            .unwrap();
        local.add_turn(ali.id, "c3", "q", "a", "{}").unwrap();
        let session = local.create_session(siti.id, 3600).unwrap();

        let shared = Accounts::open_postgres(scratch.url(), dir.path()).unwrap();
        assert_eq!(shared.users().unwrap(), local.users().unwrap());
        assert_eq!(shared.tokens().unwrap(), local.tokens().unwrap());
        for u in [&siti, &ali] {
            assert_eq!(
                shared.conversations(u.id).unwrap(),
                local.conversations(u.id).unwrap()
            );
        }
        assert_eq!(
            shared.conversation(siti.id, "c2").unwrap(),
            local.conversation(siti.id, "c2").unwrap()
        );
        assert_eq!(shared.conversation_count().unwrap(), 3);
        assert!(shared
            .verify_password("siti", "kata-laluan-siti")
            .unwrap()
            .is_some());
        assert!(shared
            .verify_password("ali", "kata-laluan-ali2")
            .unwrap()
            .is_none());
        assert_eq!(
            shared.token_user(&kept.secret).unwrap().unwrap().0.name,
            "siti"
        );
        assert!(shared.token_user(&revoked.secret).unwrap().is_none());
        // Sessions stay behind: people sign in again.
        assert!(shared.session_user(&session).unwrap().is_none());
        // New ids follow the copied ones.
        let new = shared
            .add_user("hana", "kata-laluan-hana", Role::Reader, &[])
            .unwrap();
        assert!(new.id > ali.id);
        assert!(shared.create_token("hana", "", Role::Reader).unwrap().id > revoked.id);
        shared.add_turn(siti.id, "c4", "Baru?", "Ya", "{}").unwrap();
        assert_eq!(shared.conversations(siti.id).unwrap()[0].id, "c4");

        // Once: what the data directory gains later is not copied again.
        local
            .add_user("later", "kata-laluan-later", Role::Reader, &[])
            .unwrap();
        drop(shared);
        let shared = Accounts::open_postgres(scratch.url(), dir.path()).unwrap();
        assert!(shared.user("later").unwrap().is_none());
        assert_eq!(shared.users().unwrap().len(), 3);
    }

    #[test]
    #[ignore = needs_postgres!()]
    fn postgres_replicas_share_users_sessions_and_tokens_at_once() {
        let f = Fixture::postgres();
        let (a, b) = (f.open(), f.open());
        // Two replicas starting together make one first administrator.
        let firsts = std::thread::scope(|s| {
            let one = s.spawn(|| a.ensure_first_admin("admin").unwrap());
            let two = s.spawn(|| b.ensure_first_admin("admin").unwrap());
            [one.join().unwrap(), two.join().unwrap()]
        });
        assert_eq!(firsts.iter().filter(|p| p.is_some()).count(), 1);
        assert_eq!(b.users().unwrap().len(), 1);
        // The same new name from both: one is added, the other is the user's error.
        let added = std::thread::scope(|s| {
            let one = s.spawn(|| a.add_user("siti", "kata-laluan-siti", Role::Reader, &[]));
            let two = s.spawn(|| b.add_user("siti", "kata-laluan-siti", Role::Reader, &[]));
            [one.join().unwrap(), two.join().unwrap()]
        });
        assert_eq!(added.iter().filter(|r| r.is_ok()).count(), 1);
        let e = added.into_iter().find_map(|r| r.err()).unwrap();
        assert!(e.is_user_error(), "{e}");
        let siti = a.user("siti").unwrap().unwrap();
        assert_eq!(b.user("siti").unwrap().unwrap(), siti);

        // A session started on one is valid on the other, and ended there, ends here.
        let s = a.create_session(siti.id, 3600).unwrap();
        assert_eq!(b.session_user(&s).unwrap().unwrap(), siti);
        b.end_session(&s).unwrap();
        assert!(a.session_user(&s).unwrap().is_none());
        // Disabling on one signs out on the other.
        let s = b.create_session(siti.id, 3600).unwrap();
        assert!(a.session_user(&s).unwrap().is_some());
        a.set_disabled("siti", true).unwrap();
        assert!(b.session_user(&s).unwrap().is_none());
        a.set_disabled("siti", false).unwrap();

        // A token revoked on one is refused by the other at once.
        let t = a.create_token("siti", "script", Role::Reader).unwrap();
        assert_eq!(b.token_user(&t.secret).unwrap().unwrap().0.id, siti.id);
        a.revoke_token(t.id).unwrap();
        assert!(b.token_user(&t.secret).unwrap().is_none());
        assert!(b.revoke_token(t.id).unwrap_err().is_user_error());

        // Conversations too.
        a.add_turn(siti.id, "c1", "Berapa hari cuti?", "14 hari", "{}")
            .unwrap();
        b.add_turn(siti.id, "c1", "Kalau sakit?", "22 hari", "{}")
            .unwrap();
        let (info, turns) = a.conversation(siti.id, "c1").unwrap().unwrap();
        assert_eq!((info.turns, turns.len()), (2, 2));
        b.remove_user("siti").unwrap();
        assert!(a.user("siti").unwrap().is_none());
        assert_eq!(a.conversation_count().unwrap(), 0);
    }
}
