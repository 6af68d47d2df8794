//! The party server's error type: every way a request or the server itself can fail, each
//! variant mapped to the wire [`ErrorCode`] a client is told ([`ServerError::code`]), and
//! [`chain`], which renders an error with its causes the way the refusal messages show them.

use super::infer::InferenceError;
use super::job::JobError;
use crate::proto::{EntryId, ErrorCode, Reply};
use crate::store::StoreError;
use crate::transport::TransportError;
use std::time::Duration;

/// Why the server refused or failed a request (or could not start).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// Unknown client certificate or token.
    #[error("{0}")]
    Unauthorized(String),
    /// Malformed, inconsistent or out-of-order request.
    #[error("{0}")]
    BadRequest(String),
    /// Over a configured limit.
    #[error("{0}")]
    Limit(String),
    /// No such entry (of this client).
    #[error("{0}")]
    NotFound(String),
    /// The entry belongs to another client, or the client may not use it.
    #[error("{0}")]
    Forbidden(String),
    /// The peer party refused, answered out of protocol, or is unreachable.
    #[error("{0}")]
    Peer(String),
    /// Anything else on the server side.
    #[error("{0}")]
    Internal(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A channel failed or carried a malformed message (the client's, where a client is told;
    /// failures on the peer link that a client is told about are [`ServerError::PeerLink`]).
    #[error(transparent)]
    Channel(#[from] mpc::MpcError),
    /// The peer link failed in the middle of a request.
    #[error(transparent)]
    PeerLink(mpc::MpcError),
    /// The peer link or an identity failed.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// A training job failed.
    #[error("job {job} failed (peer timeout {timeout:?})")]
    Job {
        /// The job.
        job: EntryId,
        /// The peer timeout in force.
        timeout: Duration,
        /// What failed.
        #[source]
        source: Box<JobError>,
    },
    /// The encrypted-inference endpoint failed.
    #[error(transparent)]
    Infer(#[from] InferenceError),
    /// The configuration cannot be served.
    #[error("{0}")]
    Config(String),
    /// The client endpoint's TLS configuration failed.
    #[error(transparent)]
    Tls(#[from] rustls::Error),
    /// Starting the server failed (binding, identity).
    #[error("{context}")]
    Startup {
        /// What was attempted.
        context: String,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A task of the server panicked or was cancelled.
    #[error(transparent)]
    Task(#[from] tokio::task::JoinError),
}

/// Result of the server's operations.
pub type Result<T, E = ServerError> = std::result::Result<T, E>;

impl ServerError {
    /// The wire code a client is told for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Unauthorized(_) => ErrorCode::Unauthorized,
            Self::BadRequest(_) => ErrorCode::BadRequest,
            Self::Limit(_) => ErrorCode::Limit,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::Peer(_) | Self::PeerLink(_) | Self::Transport(_) | Self::Job { .. } => {
                ErrorCode::Peer
            }
            Self::Store(e) => store_code(e),
            Self::Channel(_) => ErrorCode::BadRequest,
            Self::Internal(_)
            | Self::Infer(_)
            | Self::Config(_)
            | Self::Tls(_)
            | Self::Startup { .. }
            | Self::Task(_) => ErrorCode::Internal,
        }
    }

    /// The error a refusal `(code, message)` of [`super::limits`] or [`super::sessions`] stands for.
    pub fn refused((code, message): (ErrorCode, String)) -> Self {
        match code {
            ErrorCode::Unauthorized => Self::Unauthorized(message),
            ErrorCode::Forbidden => Self::Forbidden(message),
            ErrorCode::NotFound => Self::NotFound(message),
            ErrorCode::BadRequest => Self::BadRequest(message),
            ErrorCode::Limit => Self::Limit(message),
            ErrorCode::Peer => Self::Peer(message),
            ErrorCode::Internal => Self::Internal(message),
        }
    }

    /// The error with its causes, as the client is told.
    pub fn message(&self) -> String {
        chain(self)
    }

    /// The reply telling a client about this error.
    pub fn reply(&self) -> Reply {
        Reply::Error {
            code: self.code(),
            message: self.message(),
        }
    }

    /// A start-up failure: `context` names what was attempted.
    pub fn startup(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::Startup {
            context: context.into(),
            source: source.into(),
        }
    }
}

/// The wire code of a store failure: what the client asked for is missing or conflicts, or
/// the party's storage failed.
fn store_code(e: &StoreError) -> ErrorCode {
    match e {
        StoreError::NotFound { .. } => ErrorCode::NotFound,
        StoreError::BadShare { .. } | StoreError::Exists { .. } | StoreError::Conflict { .. } => {
            ErrorCode::BadRequest
        }
        _ => ErrorCode::Internal,
    }
}

/// `e` followed by its causes, separated by `": "`.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_the_variant_and_messages_the_causes() {
        let e = ServerError::Limit("too many jobs running".into());
        assert_eq!(e.code(), ErrorCode::Limit);
        assert_eq!(e.message(), "too many jobs running");
        let nf = ServerError::from(StoreError::NotFound {
            id: EntryId([1; 16]),
        });
        assert_eq!(nf.code(), ErrorCode::NotFound);
        let io = std::io::Error::other("disk on fire");
        let s = ServerError::startup("binding 127.0.0.1:1", io);
        assert_eq!(s.code(), ErrorCode::Internal);
        assert_eq!(s.message(), "binding 127.0.0.1:1: disk on fire");
        for code in [
            ErrorCode::Unauthorized,
            ErrorCode::Forbidden,
            ErrorCode::NotFound,
            ErrorCode::BadRequest,
            ErrorCode::Limit,
            ErrorCode::Peer,
            ErrorCode::Internal,
        ] {
            let e = ServerError::refused((code, "why".into()));
            assert_eq!((e.code(), e.message()), (code, "why".to_string()));
        }
    }
}
