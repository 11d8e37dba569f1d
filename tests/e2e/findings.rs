//! Reading phi-guard's denials as kubectl prints them: which rules a denial names, and that each
//! finding carries its HIPAA citation and a fix. Shared by the e2e suites (tests/e2e,
//! tests/e2e_node).

use phi_guard::verdict::{Reason, RuleId};

use crate::support::{shown_findings, shown_rules, Shown};

/// Every rule that the violating app breaks.
pub const CORE_RULES: [RuleId; 4] = [
    RuleId::EncryptionAtRest,
    RuleId::EncryptionInTransit,
    RuleId::NetworkSegmentation,
    RuleId::AuditSidecar,
];

/// Where a finding of `r` is shown in `msg` (`[r/reason]`), first one.
fn tag_of(msg: &str, r: RuleId) -> Option<usize> {
    msg.find(&format!("[{}/", r.as_str()))
}

/// The part of a denial message about `rule`: from its first `[rule/reason]` tag to the next
/// finding's tag (`[rule/reason]` or an "and N more" line's `[rule]`) of any rule, or the end.
pub fn finding_text(msg: &str, rule: RuleId) -> Option<&str> {
    let start = tag_of(msg, rule)?;
    let after = start + 1;
    let end = RuleId::ALL
        .iter()
        .flat_map(|r| {
            let rest = &msg[after..];
            [tag_of(rest, *r), rest.find(&format!("[{}]", r.as_str()))]
        })
        .flatten()
        .min()
        .map_or(msg.len(), |i| after + i);
    Some(&msg[start..end])
}

/// The denial itself, without the `Warning:` lines kubectl prints before it (Warn findings).
pub fn denial(stderr: &str) -> &str {
    stderr
        .find("denied the request")
        .map_or(stderr, |i| &stderr[i..])
}

/// The denial lists a finding of every rule in `rules`, each with its HIPAA citation and a fix.
pub fn assert_findings(stderr: &str, rules: &[RuleId]) {
    let msg = denial(stderr);
    for &rule in rules {
        let text = finding_text(msg, rule)
            .unwrap_or_else(|| panic!("the denial has no [{}/…] finding:\n{msg}", rule.as_str()));
        assert!(
            text.contains(rule.citation()),
            "[{}] finding without its citation {}: {text}",
            rule.as_str(),
            rule.citation()
        );
        assert!(
            text.contains("Fix:"),
            "[{}] finding without a fix: {text}",
            rule.as_str()
        );
    }
}

/// Rule ids named in a denial's findings (not in warnings), in the order of [`CORE_RULES`].
pub fn rules_named(stderr: &str) -> Vec<RuleId> {
    let shown = shown_rules(denial(stderr));
    CORE_RULES
        .iter()
        .copied()
        .filter(|r| shown.iter().any(|s| s == r.as_str()))
        .collect()
}

/// The findings of `reason` shown in `text` (denial lines, warnings), each checked to carry the
/// reason's own rule.
pub fn shown_with(text: &str, reason: Reason) -> Vec<Shown> {
    let found: Vec<Shown> = shown_findings(text)
        .into_iter()
        .filter(|s| s.reason == reason.as_str())
        .collect();
    for s in &found {
        assert_eq!(
            s.rule,
            reason.rule().as_str(),
            "{} shown under another rule:\n{text}",
            reason.as_str()
        );
    }
    found
}

/// `text` shows a finding of `reason`.
pub fn shows(text: &str, reason: Reason) -> bool {
    !shown_with(text, reason).is_empty()
}

/// `text` shows a finding of `rule` (any reason).
pub fn shows_rule(text: &str, rule: RuleId) -> bool {
    shown_findings(text).iter().any(|s| s.rule == rule.as_str())
}
