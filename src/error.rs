//! The core library's one error type.
//!
//! Every error is either the user's fault (bad input, a missing file, a model that was
//! never installed) or ours (a store failed, a model crashed). [`Error::is_user_error`]
//! tells them apart; the server maps that to an HTTP status in exactly one place and the
//! CLI to an exit code.

use std::path::PathBuf;

/// Result alias used throughout the core library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The underlying error a store, BM25 or embedder failure carries as its `source()`.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in the core library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is invalid (a user error).
    #[error("configuration error: {0}")]
    Config(String),

    /// A model file that should have been installed is missing.
    #[error(
        "model file not found: {path}\n  Install the models with: python3 scripts/install_models.py \
         (or run ./quickstart.sh), or fix paths.models_dir in your config"
    )]
    ModelMissing { path: PathBuf },

    /// A path given by the user does not exist.
    #[error("path not found: {0}")]
    PathNotFound(PathBuf),

    /// The request itself is wrong (empty question, unknown mode, ...).
    #[error("{0}")]
    BadRequest(String),

    /// The index was built with another embedder than the configured one.
    #[error(
        "the index at {data_dir} was built with embedder `{built_with}` but the configuration \
         asks for `{configured}`: run `tanya reindex` to rebuild it with `{configured}` (the \
         old index is replaced only once the new one is complete), or switch the embedder back"
    )]
    EmbedderMismatch {
        data_dir: PathBuf,
        built_with: String,
        configured: String,
    },

    /// Another Tanya process holds the data directory.
    #[error("the data directory {0} is in use by another Tanya process")]
    Locked(PathBuf),

    /// The embedding model (or the reranker) failed: what we were doing, and the error
    /// underneath when there is one. `Display` shows only `context`; the source is
    /// [`std::error::Error::source`] (see [`Error::full_message`]).
    #[error("embedding failed: {context}")]
    Embed {
        context: String,
        #[source]
        source: Option<BoxError>,
    },

    /// The language model failed.
    #[error("generation failed: {0}")]
    Generate(#[from] GenerateError),

    /// The vector store failed: what we were doing, and the store's error when there is
    /// one.
    #[error("vector store: {context}")]
    Store {
        context: String,
        #[source]
        source: Option<BoxError>,
    },

    /// The BM25 index failed: what we were doing, and tantivy's error when there is one.
    #[error("BM25 index: {context}")]
    Bm25 {
        context: String,
        #[source]
        source: Option<BoxError>,
    },

    /// The accounts database failed: what we were doing, and SQLite's error when there
    /// is one.
    #[error("accounts database: {context}")]
    Accounts {
        context: String,
        #[source]
        source: Option<BoxError>,
    },

    /// The shared state (PostgreSQL, `[shared] postgres`) failed: what we were doing,
    /// and the database's error when there is one.
    #[error("shared state (PostgreSQL): {context}")]
    Shared {
        context: String,
        #[source]
        source: Option<BoxError>,
    },

    /// Another replica holds the writer lease and kept it past `[shared] lease_wait_secs`.
    #[error("another Tanya replica is writing to this index (it holds the writer lease); {0}")]
    WriterBusy(String),

    /// The data directory's disk is (nearly) full.
    #[error(
        "no space left for the index: {available_mb} MiB free on the disk of {dir}, \
         {required_mb} MiB required (ingest.min_free_disk_mb)"
    )]
    DiskFull {
        dir: PathBuf,
        available_mb: u64,
        required_mb: u64,
    },

    /// An indexed document's file is no longer what was indexed: gone, replaced by a
    /// symlink, or changed. It is not served until its folder is ingested again.
    #[error(
        "the original of {rel_path} {why}: ingest its folder again to index what is there now"
    )]
    SourceChanged { rel_path: String, why: String },

    /// Reading or writing a file failed.
    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// True when the error is the caller's fault (fix the input), false when it is ours.
    /// A full disk is the user's to fix, also when it reaches us from under the vector
    /// store, tantivy or a file write (see [`Error::is_disk_full`]).
    pub fn is_user_error(&self) -> bool {
        match self {
            Error::Config(_)
            | Error::ModelMissing { .. }
            | Error::PathNotFound(_)
            | Error::BadRequest(_)
            | Error::EmbedderMismatch { .. }
            | Error::Locked(_)
            | Error::WriterBusy(_)
            | Error::SourceChanged { .. }
            | Error::DiskFull { .. } => true,
            Error::Generate(e) => e.is_user_error(),
            Error::Embed { .. }
            | Error::Store { .. }
            | Error::Bm25 { .. }
            | Error::Accounts { .. }
            | Error::Shared { .. }
            | Error::Io { .. } => self.is_disk_full(),
        }
    }

    /// Whether this error means the disk is full: [`Error::DiskFull`], or any error whose
    /// `source()` chain holds an [`std::io::Error`] that [`is_disk_full`] recognises (by
    /// its errno, never by its message).
    pub fn is_disk_full(&self) -> bool {
        if matches!(self, Error::DiskFull { .. }) {
            return true;
        }
        let mut next = std::error::Error::source(self);
        while let Some(e) = next {
            if e.downcast_ref::<std::io::Error>().is_some_and(is_disk_full) {
                return true;
            }
            next = e.source();
        }
        false
    }

    /// The error and its whole `source()` chain joined with ": ", for the places that
    /// show an error as one string (API messages, logs, ingest reports). A source whose
    /// text the previous one already shows is left out.
    pub fn full_message(&self) -> String {
        let mut out = self.to_string();
        let mut last = out.clone();
        let mut next = std::error::Error::source(self);
        while let Some(e) = next {
            let text = e.to_string();
            if !text.is_empty() && !last.contains(&text) {
                out.push_str(": ");
                out.push_str(&text);
            }
            last = text;
            next = e.source();
        }
        out
    }

    /// An embedder failure caused by `source`.
    pub fn embed(
        context: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error::Embed {
            context: context.into(),
            source: Some(Box::new(source)),
        }
    }

    /// An embedder failure with no underlying error.
    pub fn embed_msg(context: impl Into<String>) -> Self {
        Error::Embed {
            context: context.into(),
            source: None,
        }
    }

    /// A vector store failure caused by `source`.
    pub fn store(
        context: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error::Store {
            context: context.into(),
            source: Some(Box::new(source)),
        }
    }

    /// A vector store failure with no underlying error.
    pub fn store_msg(context: impl Into<String>) -> Self {
        Error::Store {
            context: context.into(),
            source: None,
        }
    }

    /// A BM25 index failure caused by `source`.
    pub fn bm25(
        context: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error::Bm25 {
            context: context.into(),
            source: Some(Box::new(source)),
        }
    }

    /// A BM25 index failure with no underlying error.
    pub fn bm25_msg(context: impl Into<String>) -> Self {
        Error::Bm25 {
            context: context.into(),
            source: None,
        }
    }

    /// Wraps an I/O error with what we were doing.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

/// Whether an I/O error means the disk (or the user's quota) is full: by its errno
/// (ENOSPC, EDQUOT), never by its message, which is translated on some systems.
pub fn is_disk_full(e: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(e.kind(), ErrorKind::StorageFull | ErrorKind::QuotaExceeded)
        || matches!(e.raw_os_error(), Some(28 | 122))
}

/// Everything that can go wrong. `PromptTooLong` and `InvalidInput` are the caller's to fix
/// (trim the prompt, clean the text); `ModelNotFound`/`InvalidConfig`/`Template` are
/// configuration errors, and so is a model server that refuses the key, the URL or the
/// model name (401, 403, 404); the rest are failures of the engine or of the model server.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("language model file not found: {}", path.display())]
    ModelNotFound { path: PathBuf },
    #[error("could not load language model {}: {reason}", path.display())]
    ModelLoad { path: PathBuf, reason: String },
    #[error("invalid generator configuration: {0}")]
    InvalidConfig(String),
    #[error("llama.cpp backend failed to initialise: {0}")]
    Backend(String),
    #[error("chat template error: {0}")]
    Template(String),
    #[error("prompt has {prompt_tokens} tokens but the context holds at most {max_context} (one must stay free for the answer)")]
    PromptTooLong {
        prompt_tokens: usize,
        max_context: u32,
    },
    #[error("invalid input: {0}")]
    InvalidInput(String),
    #[error("could not create a llama.cpp context of {n_ctx} tokens")]
    Context { n_ctx: u32 },
    #[error("llama.cpp decode failed: {0}")]
    Decode(String),
    #[error("generation worker stopped unexpectedly")]
    WorkerGone,
    #[error("generation worker panicked: {0}")]
    Panicked(String),
    /// No connection to the model server: refused, no route, an unknown host, or no
    /// answer to the connect within `generator.connect_timeout_ms`.
    #[error("cannot reach the model server at {url}: {reason}")]
    ServerUnreachable { url: String, reason: String },
    /// The model server answered with an HTTP error (its message, shortened).
    #[error("the model server answered HTTP {status}: {body}")]
    ServerStatus { status: u16, body: String },
    /// The model server sent nothing for `generator.read_timeout_ms`.
    #[error("the model server sent nothing for {waited_ms} ms (generator.read_timeout_ms)")]
    Timeout { waited_ms: u64 },
    /// The model server's connection ended before its answer did (it stopped or crashed).
    #[error("the model server closed the connection before the answer ended: {0}")]
    ServerClosed(String),
    /// The model server's reply is not what the OpenAI API describes.
    #[error("the model server's reply is not what the OpenAI API describes: {0}")]
    ServerProtocol(String),
}

impl GenerateError {
    /// Whether the caller (or the configuration) must change something; otherwise the
    /// failure is ours or the model server's.
    pub fn is_user_error(&self) -> bool {
        match self {
            GenerateError::ModelNotFound { .. }
            | GenerateError::InvalidConfig(_)
            | GenerateError::PromptTooLong { .. }
            | GenerateError::InvalidInput(_) => true,
            GenerateError::ServerStatus { status, .. } => matches!(status, 401 | 403 | 404),
            _ => false,
        }
    }

    /// Whether the model server failed (unreachable, silent, an HTTP error, a broken or
    /// malformed reply), as opposed to the request or the local model: before the
    /// first token, the engine answers extractively instead.
    pub fn is_server_failure(&self) -> bool {
        matches!(
            self,
            GenerateError::ServerUnreachable { .. }
                | GenerateError::ServerStatus { .. }
                | GenerateError::Timeout { .. }
                | GenerateError::ServerClosed(_)
                | GenerateError::ServerProtocol(_)
        )
    }

    /// Whether the same request may succeed if sent again (a server starting, busy or
    /// briefly gone): the model server's retries before the first token are for these.
    pub fn is_transient(&self) -> bool {
        match self {
            GenerateError::ServerUnreachable { .. }
            | GenerateError::Timeout { .. }
            | GenerateError::ServerClosed(_) => true,
            GenerateError::ServerStatus { status, .. } => {
                matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
            }
            _ => false,
        }
    }
}
