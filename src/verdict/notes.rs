//! The notes phi-guard puts before a finding's message (or into a message) to say why it is
//! not enforced as usual: a pre-existing finding of an UPDATE, a finding waived by a
//! PhiException, a finding a controller's child inherits from its admitted template, a workload
//! that fails in a namespace being labeled PHI. Written here once: the code that adds a note and
//! the tests that look for it both call these, so the wording lives in one place.

use super::Mode;

/// The note of a finding an UPDATE keeps: the old object had it too.
pub const PRE_EXISTING: &str =
    "pre-existing (the object had this before this update, which does not make it worse; it still needs fixing)";

/// The note of a finding waived by PhiException `exception` (ticket `ticket`) until `expires`
/// (as the exception writes it).
pub fn excepted_until(expires: &str, ticket: &str, exception: &str) -> String {
    format!("excepted until {expires} (ticket {ticket}, PhiException {exception})")
}

/// The note of a finding a child shares with the admitted template of its owner `kind` `name`.
pub fn made_by(kind: &str, name: &str) -> String {
    format!("made by {kind} {name} from its admitted template")
}

/// How the answer to labeling a namespace PHI names a workload that fails there: `workload`
/// (e.g. `Deployment ledger (2 pods)`) fails at `mode` under PhiPolicy `policy`.
pub fn fails_under(workload: &str, mode: Mode, policy: &str) -> String {
    format!(
        "{workload} fails under {} (PhiPolicy {policy})",
        mode.as_str()
    )
}

/// What a finding's fix and `phi-guard fix` say when the cluster has no StorageClass known to
/// encrypt.
pub const NO_ENCRYPTING_CLASS: &str = "no encrypting StorageClass is known";
