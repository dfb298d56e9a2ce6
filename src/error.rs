//! The core library's one error type.
//!
//! Every error is either the user's fault (bad input, a missing file, a model that was
//! never installed) or ours (a store failed, a model crashed). [`Error::is_user_error`]
//! tells them apart; the server maps that to an HTTP status in exactly one place and the
//! CLI to an exit code.

use std::path::PathBuf;

/// Result alias used throughout the core library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

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

    /// The embedding model failed.
    #[error("embedding failed: {0}")]
    Embed(String),

    /// The language model failed.
    #[error("generation failed: {0}")]
    Generate(#[from] GenerateError),

    /// The vector store failed.
    #[error("vector store: {0}")]
    Store(String),

    /// The BM25 index failed.
    #[error("BM25 index: {0}")]
    Bm25(String),

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

    /// Reading or writing a file failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// True when the error is the caller's fault (fix the input), false when it is ours.
    pub fn is_user_error(&self) -> bool {
        match self {
            Error::Config(_)
            | Error::ModelMissing { .. }
            | Error::PathNotFound(_)
            | Error::BadRequest(_)
            | Error::EmbedderMismatch { .. }
            | Error::Locked(_)
            | Error::DiskFull { .. } => true,
            Error::Generate(e) => matches!(
                e,
                GenerateError::ModelNotFound { .. }
                    | GenerateError::InvalidConfig(_)
                    | GenerateError::PromptTooLong { .. }
                    | GenerateError::InvalidInput(_)
            ),
            Error::Embed(_) | Error::Store(_) | Error::Bm25(_) | Error::Io { .. } => false,
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
/// configuration errors; the rest are failures of the engine.
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
}
