//! Kubernetes label selectors (matchLabels + matchExpressions) as one validated, matchable type.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde::{Deserialize, Serialize};

/// Labels of an object, as the API server stores them.
pub(crate) use crate::labels::Labels;

/// A set-based requirement operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Operator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

/// One `matchExpressions` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requirement {
    pub key: String,
    pub operator: Operator,
    pub values: Vec<String>,
}

/// A validated label selector. The empty selector matches everything, as in Kubernetes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selector {
    pub match_labels: Vec<(String, String)>,
    pub requirements: Vec<Requirement>,
}

/// Why a selector could not be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SelectorError {
    #[error("matchExpressions[{index}].operator: unknown operator {operator:?} (use In, NotIn, Exists or DoesNotExist)")]
    UnknownOperator { index: usize, operator: String },
    #[error("matchExpressions[{index}].values: must be non-empty for operator {operator:?}")]
    MissingValues {
        index: usize,
        operator: &'static str,
    },
    #[error("matchExpressions[{index}].values: must be empty for operator {operator:?}")]
    UnexpectedValues {
        index: usize,
        operator: &'static str,
    },
    #[error("matchExpressions[{index}].key: must not be empty")]
    EmptyKey { index: usize },
}

impl Selector {
    /// A selector that matches exactly these labels.
    pub fn from_labels<I, K, V>(labels: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Selector {
            match_labels: labels
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            requirements: Vec::new(),
        }
    }

    /// True when this selector selects every object (`{}`).
    pub fn is_empty(&self) -> bool {
        self.match_labels.is_empty() && self.requirements.is_empty()
    }

    /// Does this selector select an object with these labels?
    pub fn matches(&self, labels: &Labels) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k).is_some_and(|have| have == v))
            && self.requirements.iter().all(|r| {
                let have = labels.get(&r.key);
                match r.operator {
                    Operator::In => have.is_some_and(|h| r.values.iter().any(|v| v == h)),
                    Operator::NotIn => !have.is_some_and(|h| r.values.iter().any(|v| v == h)),
                    Operator::Exists => have.is_some(),
                    Operator::DoesNotExist => have.is_none(),
                }
            })
    }
}

impl TryFrom<&LabelSelector> for Selector {
    type Error = SelectorError;

    fn try_from(sel: &LabelSelector) -> Result<Self, Self::Error> {
        let match_labels = sel
            .match_labels
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut requirements = Vec::new();
        for (index, e) in sel.match_expressions.iter().flatten().enumerate() {
            if e.key.is_empty() {
                return Err(SelectorError::EmptyKey { index });
            }
            let values = e.values.clone().unwrap_or_default();
            let operator = match e.operator.as_str() {
                "In" => Operator::In,
                "NotIn" => Operator::NotIn,
                "Exists" => Operator::Exists,
                "DoesNotExist" => Operator::DoesNotExist,
                other => {
                    return Err(SelectorError::UnknownOperator {
                        index,
                        operator: other.to_string(),
                    })
                }
            };
            match operator {
                Operator::In | Operator::NotIn if values.is_empty() => {
                    return Err(SelectorError::MissingValues {
                        index,
                        operator: if operator == Operator::In {
                            "In"
                        } else {
                            "NotIn"
                        },
                    })
                }
                Operator::Exists | Operator::DoesNotExist if !values.is_empty() => {
                    return Err(SelectorError::UnexpectedValues {
                        index,
                        operator: if operator == Operator::Exists {
                            "Exists"
                        } else {
                            "DoesNotExist"
                        },
                    })
                }
                _ => {}
            }
            requirements.push(Requirement {
                key: e.key.clone(),
                operator,
                values,
            });
        }
        Ok(Selector {
            match_labels,
            requirements,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn expr(key: &str, op: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: if values.is_empty() {
                None
            } else {
                Some(values.iter().map(|v| v.to_string()).collect())
            },
        }
    }

    #[test]
    fn empty_selector_matches_everything() {
        let s = Selector::default();
        assert!(s.matches(&labels(&[])));
        assert!(s.matches(&labels(&[("a", "b")])));
    }

    #[test]
    fn match_labels_and_expressions_combine() {
        let ls = LabelSelector {
            match_labels: Some([("app".to_string(), "api".to_string())].into()),
            match_expressions: Some(vec![
                expr("tier", "In", &["web", "db"]),
                expr("canary", "DoesNotExist", &[]),
                expr("env", "NotIn", &["dev"]),
            ]),
        };
        let s = Selector::try_from(&ls).expect("valid");
        assert!(s.matches(&labels(&[("app", "api"), ("tier", "db")])));
        assert!(s.matches(&labels(&[("app", "api"), ("tier", "db"), ("env", "prod")])));
        assert!(!s.matches(&labels(&[("app", "api"), ("tier", "db"), ("env", "dev")])));
        assert!(!s.matches(&labels(&[("app", "api"), ("tier", "cache")])));
        assert!(!s.matches(&labels(&[("app", "api"), ("tier", "db"), ("canary", "1")])));
        assert!(!s.matches(&labels(&[("tier", "db")])));
    }

    #[test]
    fn invalid_expressions_are_rejected_with_the_field() {
        let bad = LabelSelector {
            match_labels: None,
            match_expressions: Some(vec![expr("a", "Exists", &[]), expr("b", "In", &[])]),
        };
        let err = Selector::try_from(&bad).unwrap_err();
        assert_eq!(
            err.to_string(),
            "matchExpressions[1].values: must be non-empty for operator \"In\""
        );
        let bad = LabelSelector {
            match_labels: None,
            match_expressions: Some(vec![expr("a", "Has", &[])]),
        };
        assert!(matches!(
            Selector::try_from(&bad),
            Err(SelectorError::UnknownOperator { index: 0, .. })
        ));
    }
}
