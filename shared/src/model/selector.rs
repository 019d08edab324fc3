//! Kubernetes label selectors, evaluated as the API server evaluates a webhook's
//! `namespaceSelector` and `objectSelector` (k8s.io/apimachinery pkg/apis/meta/v1
//! `LabelSelectorAsSelector`, pkg/labels/selector.go `Requirement.Matches`).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

/// Labels by key, as a namespace or pod carries them.
pub type Labels = BTreeMap<String, String>;

/// Whether `labels` satisfy `selector`: every `matchLabels` pair and every
/// `matchExpressions` requirement (`In`, `NotIn`, `Exists`, `DoesNotExist`) holds.
///
/// An absent selector matches everything: the API server defaults a webhook's missing
/// `namespaceSelector`/`objectSelector` to `{}` (admissionregistration/v1 defaults).
/// A requirement with an unknown operator matches nothing, as a selector that fails to
/// parse selects nothing.
pub fn matches(selector: Option<&LabelSelector>, labels: &Labels) -> bool {
    let Some(selector) = selector else { return true };
    let pairs = selector.match_labels.iter().flatten();
    let exprs = selector.match_expressions.iter().flatten();
    pairs.into_iter().all(|(k, v)| labels.get(k) == Some(v)) && exprs.into_iter().all(|r| requirement(r, labels))
}

fn requirement(r: &LabelSelectorRequirement, labels: &Labels) -> bool {
    let value = labels.get(&r.key);
    let listed = |v: &String| r.values.iter().flatten().any(|x| x == v);
    match r.operator.as_str() {
        "In" => value.is_some_and(listed),
        // NotIn also holds when the key is absent (pkg/labels/selector.go).
        "NotIn" => !value.is_some_and(listed),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        _ => false,
    }
}

/// Every requirement of a selector as (key, operator); `matchLabels` pairs count as `In`.
pub fn requirements(selector: Option<&LabelSelector>) -> impl Iterator<Item = (&str, &str)> {
    let pairs = selector
        .and_then(|s| s.match_labels.as_ref())
        .into_iter()
        .flatten()
        .map(|(k, _)| (k.as_str(), "In"));
    let exprs = selector
        .and_then(|s| s.match_expressions.as_ref())
        .into_iter()
        .flatten()
        .map(|r| (r.key.as_str(), r.operator.as_str()));
    pairs.chain(exprs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(yaml: &str) -> LabelSelector {
        serde_saphyr::from_str(yaml).unwrap()
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn match_expressions_follow_kubernetes_semantics() {
        // rev.namespace.sidecar-injector.istio.io of revision 1-27 (mutatingwebhook.yaml).
        let ns = sel(
            "matchExpressions:\n- {key: istio.io/rev, operator: In, values: ['1-27']}\n- {key: istio-injection, operator: DoesNotExist}\n",
        );
        assert!(matches(Some(&ns), &labels(&[("istio.io/rev", "1-27")])));
        assert!(!matches(Some(&ns), &labels(&[("istio.io/rev", "1-28")])));
        assert!(!matches(Some(&ns), &labels(&[])));
        assert!(!matches(
            Some(&ns),
            &labels(&[("istio.io/rev", "1-27"), ("istio-injection", "enabled")])
        ));

        // NotIn holds for a missing key.
        let obj = sel("matchExpressions:\n- {key: sidecar.istio.io/inject, operator: NotIn, values: ['false']}\n");
        assert!(matches(Some(&obj), &labels(&[])));
        assert!(matches(Some(&obj), &labels(&[("sidecar.istio.io/inject", "true")])));
        assert!(!matches(Some(&obj), &labels(&[("sidecar.istio.io/inject", "false")])));

        let exists = sel("matchExpressions:\n- {key: a, operator: Exists}\n");
        assert!(matches(Some(&exists), &labels(&[("a", "")])));
        assert!(!matches(Some(&exists), &labels(&[])));
    }

    #[test]
    fn match_labels_absent_and_empty_selectors() {
        // istioctl's never-match selector (istioctl/pkg/util/common.go NeverMatch).
        let never = sel("matchLabels: {istio.io/deactivated: never-match}\n");
        assert!(!matches(Some(&never), &labels(&[("istio.io/rev", "default")])));
        assert!(matches(
            Some(&never),
            &labels(&[("istio.io/deactivated", "never-match")])
        ));
        assert!(matches(None, &labels(&[])), "an absent webhook selector is {{}}");
        assert!(matches(Some(&LabelSelector::default()), &labels(&[("x", "y")])));
        let bad = sel("matchExpressions:\n- {key: a, operator: Gt, values: ['1']}\n");
        assert!(!matches(Some(&bad), &labels(&[("a", "2")])));
    }
}
