//! The reconciler's typed errors. Each variant is a metric label (`metric_label`), so a failing
//! operator shows *why* in `shoal_operator_reconcile_errors_total{kind=...}` without log digging.

use crate::controlplane::driver::DriverError;

/// Why a reconcile failed (the controller requeues it).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A call to the Kubernetes API failed.
    #[error("kubernetes API ({what}): {source}")]
    Kube {
        what: &'static str,
        #[source]
        source: kube::Error,
    },
    /// Adding or removing the finalizer failed, or the work inside it did.
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
    /// The control plane could not plan a step.
    #[error("control plane: {0}")]
    Control(#[from] DriverError),
    /// The object has no namespace or name (the API server never sends one like that).
    #[error("ShoalCluster without {0}")]
    Incomplete(&'static str),
    /// `spec.auth.secretRef` names a Secret or key that does not hold a password.
    #[error("auth secret {secret}: {detail}")]
    AuthSecret { secret: String, detail: String },
    /// A `spec.users` entry's password Secret is missing or unusable.
    #[error("user {user}: password secret {secret}: {detail}")]
    UserSecret { user: String, secret: String, detail: String },
    /// The `spec.tls` Secret is missing or lacks a key.
    #[error("tls secret {secret}: {detail}")]
    TlsSecret { secret: String, detail: String },
    /// The operating system gave no random bytes for the operator's password.
    #[error("no random source for the operator's password")]
    Random,
}

impl Error {
    /// A short, fixed label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube { .. } => "kube",
            Error::Finalizer(e) => match e.as_ref() {
                kube::runtime::finalizer::Error::ApplyFailed(e)
                | kube::runtime::finalizer::Error::CleanupFailed(e) => e.metric_label(),
                _ => "finalizer",
            },
            Error::Control(_) => "control_plane",
            Error::Incomplete(_) => "incomplete",
            Error::AuthSecret { .. } => "auth_secret",
            Error::UserSecret { .. } => "user_secret",
            Error::TlsSecret { .. } => "tls_secret",
            Error::Random => "random",
        }
    }
}

/// Tags a kube error with what was being done.
pub(crate) fn kube(what: &'static str) -> impl FnOnce(kube::Error) -> Error {
    move |source| Error::Kube { what, source }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
