//! The command line and a running server on one machine: `tanya serve` leaves its address
//! and a key in `<data_dir>/server.json` (readable only by the account running Tanya, like
//! the data itself), so that `tanya ingest`, `ask`, `search` and `documents` work through
//! the server instead of meeting "the data directory is in use". The key acts as an
//! administrator ([`super::auth::Via::Local`]) and alone may ingest a folder by its path
//! on this machine.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use actix_web::web;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{Principal, LOCAL_PREFIX};
use super::error::ApiError;
use super::AppState;
use crate::accounts::Accounts;
use crate::engine::{IngestOptions, IngestReport, Quiet};
use crate::Engine;

/// The file's name in the data directory.
pub const FILE: &str = "server.json";

/// What `server.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerFile {
    /// Where the server listens, as this machine reaches it (`http://127.0.0.1:8080`).
    pub url: String,
    pub pid: u32,
    /// `tanya_local_…`: the key of the command line.
    pub key: String,
}

/// The address this machine reaches a server bound to `addr` at.
pub fn local_url(addr: SocketAddr) -> String {
    url_of(addr, false)
}

/// [`local_url`], with `https://` when the server speaks TLS.
pub fn url_of(addr: SocketAddr, https: bool) -> String {
    let scheme = if https { "https" } else { "http" };
    match addr {
        SocketAddr::V4(a) if a.ip().is_unspecified() => {
            format!("{scheme}://127.0.0.1:{}", a.port())
        }
        SocketAddr::V6(a) if a.ip().is_unspecified() => format!("{scheme}://[::1]:{}", a.port()),
        SocketAddr::V4(a) => format!("{scheme}://{a}"),
        SocketAddr::V6(a) => format!("{scheme}://[{}]:{}", a.ip(), a.port()),
    }
}

/// Makes a new key, tells the server its hash, and writes `server.json` (mode 0600,
/// atomically). Returns the file's path.
pub fn publish(state: &AppState, addr: SocketAddr, https: bool) -> crate::Result<PathBuf> {
    use sha2::Digest;
    let key = format!("{LOCAL_PREFIX}{}", crate::accounts::random_secret()?);
    let _ = state
        .local_key
        .set(sha2::Sha256::digest(key.as_bytes()).to_vec());
    let file = state.engine.data_dir().join(FILE);
    let body = ServerFile {
        url: url_of(addr, https),
        pid: std::process::id(),
        key,
    };
    write_private(&file, &serde_json::to_vec_pretty(&body).unwrap_or_default())
        .map_err(|e| crate::Error::io(format!("writing {}", file.display()), e))?;
    Ok(file)
}

fn write_private(file: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = file.with_extension("json.tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, file)
}

/// `POST /api/ingest` body: a file or folder on this machine.
#[derive(Debug, Deserialize, ToSchema)]
pub struct IngestRequest {
    /// A file or folder on the server's machine, in full.
    #[schema(value_type = String)]
    pub path: PathBuf,
    pub groups: Vec<String>,
    #[serde(default)]
    pub regroup: bool,
    /// The collection new documents go into.
    #[serde(default)]
    pub collection: Option<String>,
}

#[utoipa::path(post, path = "/api/ingest", tag = "documents", request_body = IngestRequest,
    responses((status = 200, description = "the ingest report, as `tanya ingest --report` writes it"),
              (status = 403, body = super::error::ErrorBody)))]
pub async fn ingest(
    state: web::Data<AppState>,
    by: Principal,
    body: web::Json<IngestRequest>,
) -> Result<web::Json<IngestReport>, ApiError> {
    let IngestRequest {
        path,
        groups,
        regroup,
        collection,
    } = body.into_inner();
    crate::engine::Access::for_groups(groups.clone())?;
    if !path.is_absolute() {
        return Err(ApiError::bad_request(
            "give the path in full (the server does not know your working directory)",
        ));
    }
    let engine = Arc::clone(&state.engine);
    let options = IngestOptions {
        regroup,
        in_collection: collection,
        ..IngestOptions::with_groups(groups.clone())
    };
    let shown = path.display().to_string();
    let report = web::block(move || engine.ingest(&path, &options, &Quiet)).await??;
    state.audit.record(
        "ingest",
        Some(&by.user.name),
        serde_json::json!({
            "path": shown,
            "groups": groups,
            "indexed": report.indexed.len(),
            "rejected": report.rejected.len(),
            "removed": report.removed.len(),
        }),
    );
    Ok(web::Json(report))
}

/// What a backup holds besides the data: when and from what it was made.
pub const BACKUP_FILE: &str = "tanya-backup.json";

/// What a backup copied.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BackupReport {
    /// Seconds since the Unix epoch.
    pub created_at: i64,
    pub version: String,
    pub documents: usize,
    pub users: usize,
    pub files: usize,
    pub bytes: u64,
}

/// Copies the index, the uploads, the audit log and the accounts of `engine`'s data
/// directory into `dest` (new or empty), consistently while a server may be using them:
/// the index between two writes, the accounts database as one transaction sees it. Not
/// copied: the lock, `server.json` and the first administrator's password file.
pub fn backup(engine: &Engine, accounts: &Accounts, dest: &Path) -> crate::Result<BackupReport> {
    let occupied = std::fs::read_dir(dest).is_ok_and(|mut d| d.next().is_some());
    if occupied {
        return Err(crate::Error::BadRequest(format!(
            "{} is not empty: back up into a new folder",
            dest.display()
        )));
    }
    let wal = format!("{}-wal", crate::accounts::FILE);
    let shm = format!("{}-shm", crate::accounts::FILE);
    let skip = [
        crate::accounts::FILE,
        wal.as_str(),
        shm.as_str(),
        crate::accounts::FIRST_PASSWORD_FILE,
        FILE,
    ];
    let (files, bytes) = engine.copy_data_to(dest, &skip)?;
    accounts.copy_to(&dest.join(crate::accounts::FILE))?;
    let report = BackupReport {
        created_at: chrono::Utc::now().timestamp(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        documents: engine.manifest().documents.len(),
        users: accounts.users()?.len(),
        files: files + 1,
        bytes,
    };
    let file = dest.join(BACKUP_FILE);
    std::fs::write(
        &file,
        serde_json::to_vec_pretty(&report).unwrap_or_default(),
    )
    .map_err(|e| crate::Error::io(format!("writing {}", file.display()), e))?;
    Ok(report)
}

/// Puts a backup made by [`backup`] in place as the data directory `data_dir`, which
/// must be new or empty and not in use. Open it afterwards to check it.
pub fn restore(backup_dir: &Path, data_dir: &Path) -> crate::Result<BackupReport> {
    let text = std::fs::read_to_string(backup_dir.join(BACKUP_FILE)).map_err(|_| {
        crate::Error::BadRequest(format!(
            "{} is not a Tanya backup (it has no {BACKUP_FILE})",
            backup_dir.display()
        ))
    })?;
    let report: BackupReport = serde_json::from_str(&text)
        .map_err(|e| crate::Error::BadRequest(format!("{BACKUP_FILE}: {e}")))?;
    let occupied = std::fs::read_dir(data_dir).is_ok_and(|mut d| d.next().is_some());
    if occupied {
        return Err(crate::Error::BadRequest(format!(
            "the data directory {} is not empty: restore into a new one (set \
             paths.data_dir or --data-dir), and move it in place once checked",
            data_dir.display()
        )));
    }
    crate::engine::copy_dir(backup_dir, data_dir, &[BACKUP_FILE])
        .map_err(|e| crate::Error::io(format!("restoring into {}", data_dir.display()), e))?;
    Ok(report)
}

/// `POST /api/backup` body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct BackupRequest {
    /// A new or empty folder on the server's machine, in full.
    #[schema(value_type = String)]
    pub dest: PathBuf,
}

#[utoipa::path(post, path = "/api/backup", tag = "operations", request_body = BackupRequest,
    responses((status = 200, body = BackupReport), (status = 400, body = super::error::ErrorBody),
              (status = 403, body = super::error::ErrorBody)))]
pub async fn backup_route(
    state: web::Data<AppState>,
    by: Principal,
    body: web::Json<BackupRequest>,
) -> Result<web::Json<BackupReport>, ApiError> {
    let dest = body.into_inner().dest;
    if !dest.is_absolute() {
        return Err(ApiError::bad_request("give the backup folder in full"));
    }
    let engine = Arc::clone(&state.engine);
    let accounts = Arc::clone(&state.accounts);
    let shown = dest.display().to_string();
    let report = web::block(move || backup(&engine, &accounts, &dest)).await??;
    state.audit.record(
        "backup",
        Some(&by.user.name),
        serde_json::json!({ "dest": shown, "files": report.files, "bytes": report.bytes }),
    );
    Ok(web::Json(report))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unspecified_binds_are_reached_on_loopback() {
        assert_eq!(
            local_url("0.0.0.0:8080".parse().unwrap()),
            "http://127.0.0.1:8080"
        );
        assert_eq!(local_url("[::]:9000".parse().unwrap()), "http://[::1]:9000");
        assert_eq!(
            local_url("192.168.1.5:8080".parse().unwrap()),
            "http://192.168.1.5:8080"
        );
    }
}
