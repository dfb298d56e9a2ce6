//! People and what they may do: users, their role and access groups, sign-in sessions and
//! API tokens, in an embedded SQLite database (`accounts.db` in the data directory).
//!
//! - The schema is migrated on open (`PRAGMA user_version` counts the migrations run),
//!   each migration in one transaction; the database runs in WAL mode with full fsync, so
//!   a crash loses at most the write in flight and never leaves half of one.
//! - Passwords are stored as argon2id hashes (PHC strings), never in clear; a wrong name
//!   costs the same hash as a wrong password.
//! - Session and API-token secrets are 32 random bytes shown once; only their SHA-256 is
//!   stored, so a copy of the database gives no way in.
//! - Group names are compared byte for byte: "HR-1", "hr-1", "HR-10" and a Cyrillic
//!   "НR-1" are four different groups.
//!
//! SQLite handles its own locking, so `tanya users …` works while `tanya serve` runs.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

mod conversations;
pub use conversations::{ConversationInfo, StoredTurn, MAX_TITLE_CHARS};

/// The database's file name in the data directory.
pub const FILE: &str = "accounts.db";

/// Where the first start leaves the first administrator's password (readable by the
/// owner only), beside the database; removed when that password is changed.
pub const FIRST_PASSWORD_FILE: &str = "first-admin-password.txt";

/// Shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 10;

/// The migrations, in order; `PRAGMA user_version` says how many have run.
const MIGRATIONS: &[&str] = &[
    // 1: users, their groups, sessions and API tokens.
    "CREATE TABLE users (
         id            INTEGER PRIMARY KEY,
         name          TEXT NOT NULL UNIQUE,
         password_hash TEXT NOT NULL,
         role          TEXT NOT NULL CHECK (role IN ('admin', 'editor', 'reader')),
         disabled      INTEGER NOT NULL DEFAULT 0,
         created_at    INTEGER NOT NULL
     );
     CREATE TABLE user_groups (
         user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
         name    TEXT NOT NULL,
         PRIMARY KEY (user_id, name)
     );
     CREATE TABLE sessions (
         secret_hash BLOB PRIMARY KEY,
         user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
         created_at  INTEGER NOT NULL,
         expires_at  INTEGER NOT NULL
     );
     CREATE TABLE tokens (
         id          INTEGER PRIMARY KEY,
         secret_hash BLOB NOT NULL UNIQUE,
         user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
         label       TEXT NOT NULL,
         role        TEXT NOT NULL CHECK (role IN ('admin', 'editor', 'reader')),
         created_at  INTEGER NOT NULL,
         revoked_at  INTEGER
     );",
    // 2: saved conversations and their turns.
    "CREATE TABLE conversations (
         id         TEXT PRIMARY KEY,
         user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
         title      TEXT NOT NULL,
         created_at INTEGER NOT NULL,
         updated_at INTEGER NOT NULL
     );
     CREATE INDEX conversations_by_user ON conversations (user_id, updated_at);
     CREATE TABLE turns (
         conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
         n               INTEGER NOT NULL,
         question        TEXT NOT NULL,
         answer          TEXT NOT NULL,
         response        TEXT NOT NULL,
         created_at      INTEGER NOT NULL,
         PRIMARY KEY (conversation_id, n)
     );",
];

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

/// The accounts database.
pub struct Accounts {
    conn: Mutex<Connection>,
    path: PathBuf,
}

fn db_err(context: impl Into<String>) -> impl FnOnce(rusqlite::Error) -> Error {
    let context = context.into();
    move |e| Error::Accounts {
        context,
        source: Some(Box::new(e)),
    }
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
    /// Opens (creating if needed) the database in `data_dir` and brings its schema up to
    /// date.
    pub fn open(data_dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| Error::io(format!("creating {}", data_dir.display()), e))?;
        let path = data_dir.join(FILE);
        let mut conn =
            Connection::open(&path).map_err(db_err(format!("opening {}", path.display())))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(db_err("setting the busy timeout"))?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;",
        )
        .map_err(db_err("setting the journal mode"))?;
        migrate(&mut conn)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // Hashes only, but nobody else's business.
            let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
        }
        Ok(Accounts {
            conn: Mutex::new(conn),
            path,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` in one write transaction (taken at once, so that two writers never
    /// interleave) and commits it; nothing of it stays when `f` fails.
    fn write<T>(&self, f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T>) -> Result<T> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db_err("starting a transaction"))?;
        let out = f(&tx)?;
        tx.commit().map_err(db_err("committing"))?;
        Ok(out)
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
        self.write(|tx| {
            let exists: bool = tx
                .query_row("SELECT 1 FROM users WHERE name = ?1", [name], |_| Ok(true))
                .optional()
                .map_err(db_err("looking up a user"))?
                .is_some();
            if exists {
                return Err(Error::BadRequest(format!("a user named `{name}` exists")));
            }
            tx.execute(
                "INSERT INTO users (name, password_hash, role, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![name, hash, role.as_str(), now()],
            )
            .map_err(db_err("adding a user"))?;
            insert_groups(tx, tx.last_insert_rowid(), groups)
        })?;
        self.user(name)?
            .ok_or_else(|| Error::BadRequest(format!("no user named `{name}`")))
    }

    /// The user named `name`, if any.
    pub fn user(&self, name: &str) -> Result<Option<User>> {
        let conn = self.conn();
        user_where(&conn, "name = ?1", params![name])
    }

    /// Every user, by name.
    pub fn users(&self) -> Result<Vec<User>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT name FROM users ORDER BY name")
            .map_err(db_err("listing users"))?;
        let names: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .map_err(db_err("listing users"))?
            .collect::<std::result::Result<_, _>>()
            .map_err(db_err("listing users"))?;
        drop(stmt);
        names
            .iter()
            .filter_map(|n| user_where(&conn, "name = ?1", params![n]).transpose())
            .collect()
    }

    /// Whether any admin exists (the first start creates one when none does).
    pub fn has_admin(&self) -> Result<bool> {
        let conn = self.conn();
        conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM users WHERE role = 'admin' AND disabled = 0)",
            [],
            |r| r.get(0),
        )
        .map_err(db_err("looking for an admin"))
    }

    /// Writes a consistent copy of the database to `dest` (which must not exist), while
    /// it stays in use (`VACUUM INTO`).
    pub fn copy_to(&self, dest: &Path) -> Result<()> {
        let conn = self.conn();
        conn.execute("VACUUM INTO ?1", [dest.to_string_lossy()])
            .map_err(db_err(format!(
                "copying the accounts to {}",
                dest.display()
            )))?;
        Ok(())
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
        if self.user(name)?.is_some() {
            return Err(Error::BadRequest(format!(
                "there is no enabled administrator, and the name `{name}` is taken: make one \
                 with `tanya users add NAME --admin`"
            )));
        }
        let password = random_password()?;
        self.add_user(name, &password, Role::Admin, &[])?;
        Ok(Some(password))
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
        self.write(|tx| {
            let id = user_id(tx, name)?;
            tx.execute(
                "UPDATE users SET password_hash = ?1 WHERE id = ?2",
                params![hash, id],
            )
            .map_err(db_err("setting a password"))?;
            end_sessions(tx, id)
        })?;
        if was_first {
            let _ = std::fs::remove_file(&first);
        }
        Ok(())
    }

    /// Sets `name`'s role.
    pub fn set_role(&self, name: &str, role: Role) -> Result<()> {
        let conn = self.conn();
        let id = user_id(&conn, name)?;
        conn.execute(
            "UPDATE users SET role = ?1 WHERE id = ?2",
            params![role.as_str(), id],
        )
        .map_err(db_err("setting a role"))?;
        Ok(())
    }

    /// Replaces `name`'s access groups.
    pub fn set_groups(&self, name: &str, groups: &[String]) -> Result<()> {
        for g in groups {
            check_group(g)?;
        }
        self.write(|tx| {
            let id = user_id(tx, name)?;
            tx.execute("DELETE FROM user_groups WHERE user_id = ?1", [id])
                .map_err(db_err("clearing groups"))?;
            insert_groups(tx, id, groups)
        })
    }

    /// Disables or re-enables `name`; disabling ends their sessions and stops their
    /// tokens from working.
    pub fn set_disabled(&self, name: &str, disabled: bool) -> Result<()> {
        self.write(|tx| {
            let id = user_id(tx, name)?;
            tx.execute(
                "UPDATE users SET disabled = ?1 WHERE id = ?2",
                params![disabled, id],
            )
            .map_err(db_err("disabling a user"))?;
            if disabled {
                end_sessions(tx, id)?;
            }
            Ok(())
        })
    }

    /// Removes `name` with their sessions and tokens.
    pub fn remove_user(&self, name: &str) -> Result<()> {
        let conn = self.conn();
        let id = user_id(&conn, name)?;
        conn.execute("DELETE FROM users WHERE id = ?1", [id])
            .map_err(db_err("removing a user"))?;
        Ok(())
    }

    /// The user whose name and password these are, if enabled. A missing user costs the
    /// same argon2 work as a wrong password.
    pub fn verify_password(&self, name: &str, password: &str) -> Result<Option<User>> {
        let stored: Option<(String, bool)> = {
            let conn = self.conn();
            conn.query_row(
                "SELECT password_hash, disabled FROM users WHERE name = ?1",
                [name],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(db_err("looking up a user"))?
        };
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
        let t = now();
        let conn = self.conn();
        conn.execute(
            "INSERT INTO sessions (secret_hash, user_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
            params![secret_hash(&secret), user_id, t, t + ttl_secs],
        )
        .map_err(db_err("starting a session"))?;
        Ok(secret)
    }

    /// The enabled user of an unexpired session.
    pub fn session_user(&self, secret: &str) -> Result<Option<User>> {
        let conn = self.conn();
        user_where(
            &conn,
            "disabled = 0 AND id = (SELECT user_id FROM sessions WHERE secret_hash = ?1 AND expires_at > ?2)",
            params![secret_hash(secret), now()],
        )
    }

    /// Ends a session (signing out). Unknown secrets are ignored.
    pub fn end_session(&self, secret: &str) -> Result<()> {
        let conn = self.conn();
        conn.execute(
            "DELETE FROM sessions WHERE secret_hash = ?1 OR expires_at <= ?2",
            params![secret_hash(secret), now()],
        )
        .map_err(db_err("ending a session"))?;
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
        let conn = self.conn();
        conn.execute(
            "INSERT INTO tokens (secret_hash, user_id, label, role, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![secret_hash(&secret), user.id, label, role.as_str(), now()],
        )
        .map_err(db_err("creating a token"))?;
        Ok(NewToken {
            id: conn.last_insert_rowid(),
            secret,
        })
    }

    /// The enabled user of an unrevoked token, with the role the token acts as.
    pub fn token_user(&self, secret: &str) -> Result<Option<(User, Role)>> {
        let row: Option<(i64, String)> = {
            let conn = self.conn();
            conn.query_row(
                "SELECT user_id, role FROM tokens WHERE secret_hash = ?1 AND revoked_at IS NULL",
                [secret_hash(secret)],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(db_err("looking up a token"))?
        };
        let Some((user_id, role)) = row else {
            return Ok(None);
        };
        let conn = self.conn();
        let user = user_where(&conn, "disabled = 0 AND id = ?1", params![user_id])?;
        // The user's role may have been lowered since: the token never acts above it.
        Ok(user.map(|u| {
            let role = role.parse::<Role>().unwrap_or(Role::Reader).min(u.role);
            (u, role)
        }))
    }

    /// Revokes token `id`.
    pub fn revoke_token(&self, id: i64) -> Result<()> {
        let conn = self.conn();
        let n = conn
            .execute(
                "UPDATE tokens SET revoked_at = ?1 WHERE id = ?2 AND revoked_at IS NULL",
                params![now(), id],
            )
            .map_err(db_err("revoking a token"))?;
        if n == 0 {
            return Err(Error::BadRequest(format!("no active token with id {id}")));
        }
        Ok(())
    }

    /// Every token, newest first.
    pub fn tokens(&self) -> Result<Vec<TokenInfo>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT t.id, u.name, t.label, t.role, t.created_at, t.revoked_at IS NOT NULL
                 FROM tokens t JOIN users u ON u.id = t.user_id ORDER BY t.id DESC",
            )
            .map_err(db_err("listing tokens"))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, bool>(5)?,
                ))
            })
            .map_err(db_err("listing tokens"))?
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(db_err("listing tokens"))?;
        rows.into_iter()
            .map(|(id, user, label, role, created_at, revoked)| {
                Ok(TokenInfo {
                    id,
                    user,
                    label,
                    role: role.parse()?,
                    created_at,
                    revoked,
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

fn migrate(conn: &mut Connection) -> Result<()> {
    let done: usize = conn
        .query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
        .map_err(db_err("reading the schema version"))? as usize;
    if done > MIGRATIONS.len() {
        return Err(Error::Config(format!(
            "the accounts database was written by a newer Tanya (schema {done}, this one knows {})",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(done) {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Exclusive)
            .map_err(db_err("starting a migration"))?;
        tx.execute_batch(sql)
            .map_err(db_err(format!("migration {}", i + 1)))?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)
            .map_err(db_err("recording the schema version"))?;
        tx.commit()
            .map_err(db_err(format!("committing migration {}", i + 1)))?;
    }
    Ok(())
}

fn insert_groups(tx: &rusqlite::Transaction<'_>, user_id: i64, groups: &[String]) -> Result<()> {
    for g in groups {
        tx.execute(
            "INSERT OR IGNORE INTO user_groups (user_id, name) VALUES (?1, ?2)",
            params![user_id, g],
        )
        .map_err(db_err("setting a user's groups"))?;
    }
    Ok(())
}

fn end_sessions(tx: &rusqlite::Transaction<'_>, user_id: i64) -> Result<()> {
    tx.execute("DELETE FROM sessions WHERE user_id = ?1", [user_id])
        .map_err(db_err("ending sessions"))?;
    Ok(())
}

fn user_id(conn: &Connection, name: &str) -> Result<i64> {
    conn.query_row("SELECT id FROM users WHERE name = ?1", [name], |r| r.get(0))
        .optional()
        .map_err(db_err("looking up a user"))?
        .ok_or_else(|| Error::BadRequest(format!("no user named `{name}`")))
}

fn user_where(conn: &Connection, cond: &str, args: impl rusqlite::Params) -> Result<Option<User>> {
    let row = conn
        .query_row(
            &format!("SELECT id, name, role, disabled, created_at FROM users WHERE {cond}"),
            args,
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, bool>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            },
        )
        .optional()
        .map_err(db_err("reading a user"))?;
    let Some((id, name, role, disabled, created_at)) = row else {
        return Ok(None);
    };
    let mut stmt = conn
        .prepare("SELECT name FROM user_groups WHERE user_id = ?1 ORDER BY name")
        .map_err(db_err("reading groups"))?;
    let groups = stmt
        .query_map([id], |r| r.get(0))
        .map_err(db_err("reading groups"))?
        .collect::<std::result::Result<Vec<String>, _>>()
        .map_err(db_err("reading groups"))?;
    Ok(Some(User {
        id,
        name,
        role: role.parse()?,
        groups,
        disabled,
        created_at,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open() -> (tempfile::TempDir, Accounts) {
        let dir = tempfile::tempdir().unwrap();
        let a = Accounts::open(dir.path()).unwrap();
        (dir, a)
    }

    fn groups(g: &[&str]) -> Vec<String> {
        g.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_first_admin_is_made_once_with_a_random_password() {
        let (_dir, a) = open();
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

    #[test]
    fn the_first_password_file_goes_when_that_password_is_changed() {
        let (dir, a) = open();
        let file = a.ensure_first_admin_file("admin").unwrap().unwrap();
        assert_eq!(file, dir.path().join(FIRST_PASSWORD_FILE));
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

    #[test]
    fn csrf_tokens_follow_the_session_secret() {
        assert_eq!(csrf_token("abc"), csrf_token("abc"));
        assert_ne!(csrf_token("abc"), csrf_token("abd"));
        assert_ne!(csrf_token("abc"), "abc");
        assert_eq!(csrf_token("abc").len(), 43);
    }

    #[test]
    fn users_passwords_and_reopening() {
        let (dir, a) = open();
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
        let raw = std::fs::read(dir.path().join(FILE)).unwrap();
        assert!(!String::from_utf8_lossy(&raw).contains("kata-laluan-rahsia"));
        let a = Accounts::open(dir.path()).unwrap();
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

    #[test]
    fn sessions_end_with_sign_out_password_change_and_disabling() {
        let (_dir, a) = open();
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

    #[test]
    fn tokens_are_hashed_scoped_and_revocable() {
        let (dir, a) = open();
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
        let raw = std::fs::read(dir.path().join(FILE)).unwrap();
        assert!(!String::from_utf8_lossy(&raw).contains(&t.secret));
        // A lowered user role caps the token.
        let t2 = a.create_token("ed", "uploads", Role::Editor).unwrap();
        a.set_role("ed", Role::Reader).unwrap();
        assert_eq!(a.token_user(&t2.secret).unwrap().unwrap().1, Role::Reader);
        a.revoke_token(t.id).unwrap();
        assert!(a.token_user(&t.secret).unwrap().is_none());
        assert!(a.revoke_token(t.id).unwrap_err().is_user_error());
        assert_eq!(a.tokens().unwrap().iter().filter(|t| t.revoked).count(), 1);
        a.remove_user("ed").unwrap();
        assert!(a.token_user(&t2.secret).unwrap().is_none());
        assert!(a.tokens().unwrap().is_empty());
    }

    #[test]
    fn group_names_match_byte_for_byte() {
        let (_dir, a) = open();
        let set = groups(&["HR-1", "HR-10", "hr-1", "НR-1"]);
        let u = a
            .add_user("hana", "kata-laluan-rahsia", Role::Reader, &set)
            .unwrap();
        assert_eq!(u.groups.len(), 4, "{:?}", u.groups);
        assert!(check_group(" HR").is_err());
        assert!(check_group("").is_err());
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
}
