//! OCF exit codes and the error type that carries an exit reason.

use std::fmt;

/// The exit codes of the OCF 1.1 API and what Pacemaker does with them (DESIGN.md §3.10).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum OcfStatus {
    /// 0: running (unpromoted), or the action succeeded.
    Success,
    /// 1: soft error; Pacemaker restarts, then moves after `migration-threshold`.
    ErrGeneric,
    /// 2: a parameter is invalid on this host; hard error, the node is banned.
    ErrArgs,
    /// 3: the action is not implemented.
    Unimplemented,
    /// 4: not privileged.
    ErrPerm,
    /// 5: software missing on this host.
    ErrInstalled,
    /// 6: parameters inherently wrong; fatal, the resource stops everywhere.
    ErrConfigured,
    /// 7: cleanly stopped (monitor only).
    NotRunning,
    /// 8: running promoted.
    RunningPromoted,
    /// 9: promoted and failed.
    FailedPromoted,
    /// 190: running but at risk.
    Degraded,
    /// 191: promoted but at risk.
    DegradedPromoted,
}

impl OcfStatus {
    pub fn code(self) -> i32 {
        match self {
            OcfStatus::Success => 0,
            OcfStatus::ErrGeneric => 1,
            OcfStatus::ErrArgs => 2,
            OcfStatus::Unimplemented => 3,
            OcfStatus::ErrPerm => 4,
            OcfStatus::ErrInstalled => 5,
            OcfStatus::ErrConfigured => 6,
            OcfStatus::NotRunning => 7,
            OcfStatus::RunningPromoted => 8,
            OcfStatus::FailedPromoted => 9,
            OcfStatus::Degraded => 190,
            OcfStatus::DegradedPromoted => 191,
        }
    }

    /// The name ocf-shellfuncs uses, for log lines.
    pub fn name(self) -> &'static str {
        match self {
            OcfStatus::Success => "OCF_SUCCESS",
            OcfStatus::ErrGeneric => "OCF_ERR_GENERIC",
            OcfStatus::ErrArgs => "OCF_ERR_ARGS",
            OcfStatus::Unimplemented => "OCF_ERR_UNIMPLEMENTED",
            OcfStatus::ErrPerm => "OCF_ERR_PERM",
            OcfStatus::ErrInstalled => "OCF_ERR_INSTALLED",
            OcfStatus::ErrConfigured => "OCF_ERR_CONFIGURED",
            OcfStatus::NotRunning => "OCF_NOT_RUNNING",
            OcfStatus::RunningPromoted => "OCF_RUNNING_PROMOTED",
            OcfStatus::FailedPromoted => "OCF_FAILED_PROMOTED",
            OcfStatus::Degraded => "OCF_DEGRADED",
            OcfStatus::DegradedPromoted => "OCF_DEGRADED_PROMOTED",
        }
    }
}

impl fmt::Display for OcfStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.code())
    }
}

/// A failed action: the exit code and the one-line reason Pacemaker shows the administrator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OcfError {
    pub status: OcfStatus,
    pub reason: String,
}

impl OcfError {
    pub fn new(status: OcfStatus, reason: impl Into<String>) -> Self {
        OcfError { status, reason: reason.into() }
    }
    pub fn generic(reason: impl Into<String>) -> Self {
        Self::new(OcfStatus::ErrGeneric, reason)
    }
    pub fn args(reason: impl Into<String>) -> Self {
        Self::new(OcfStatus::ErrArgs, reason)
    }
    pub fn unimplemented(reason: impl Into<String>) -> Self {
        Self::new(OcfStatus::Unimplemented, reason)
    }
    pub fn perm(reason: impl Into<String>) -> Self {
        Self::new(OcfStatus::ErrPerm, reason)
    }
    pub fn installed(reason: impl Into<String>) -> Self {
        Self::new(OcfStatus::ErrInstalled, reason)
    }
    pub fn configured(reason: impl Into<String>) -> Self {
        Self::new(OcfStatus::ErrConfigured, reason)
    }
    pub fn not_running(reason: impl Into<String>) -> Self {
        Self::new(OcfStatus::NotRunning, reason)
    }
}

impl fmt::Display for OcfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.status, self.reason)
    }
}

impl std::error::Error for OcfError {}

/// Ok carries the status of a successful action (0, 7 from monitor, 8, 190, 191); Err a failure
/// with its reason. A monitor that finds the service gone may answer either `Ok(NotRunning)` (a
/// clean stop, e.g. a probe) or `Err(not_running(reason))` to explain what vanished.
pub type OcfResult<T = OcfStatus> = Result<T, OcfError>;
