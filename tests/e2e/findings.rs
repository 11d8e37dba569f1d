//! Reading phi-guard's denials as kubectl prints them: which rules a denial names, and that each
//! finding carries its HIPAA citation and a fix. Shared by the e2e suites (tests/e2e,
//! tests/e2e_node).

use phi_guard::verdict::RuleId;

/// Every rule that the violating app breaks.
pub const CORE_RULES: [RuleId; 4] = [
    RuleId::EncryptionAtRest,
    RuleId::EncryptionInTransit,
    RuleId::NetworkSegmentation,
    RuleId::AuditSidecar,
];

/// The part of a denial message about `rule`: from its first `[rule]` tag to the next tag of any
/// rule, or the end.
pub fn finding_text(msg: &str, rule: RuleId) -> Option<&str> {
    let tag = format!("[{}]", rule.as_str());
    let start = msg.find(&tag)?;
    let after = start + tag.len();
    let end = RuleId::ALL
        .iter()
        .filter_map(|r| msg[after..].find(&format!("[{}]", r.as_str())))
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
            .unwrap_or_else(|| panic!("the denial has no [{}] finding:\n{msg}", rule.as_str()));
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

/// Rule ids named in a denial (not in warnings), in the order of [`CORE_RULES`].
pub fn rules_named(stderr: &str) -> Vec<RuleId> {
    let msg = denial(stderr);
    CORE_RULES
        .iter()
        .copied()
        .filter(|r| msg.contains(&format!("[{}]", r.as_str())))
        .collect()
}
