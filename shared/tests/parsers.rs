//! The parsers that read what users and the cluster write, fed arbitrary input: none may
//! panic, and the forms Kubernetes, Istio and kubectl write read back as written.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, EnvVar, Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement, ObjectMeta};
use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use shared::connect::parse_duration;
use shared::model::selector::{self, Labels};
use shared::model::{ImageRef, pod_revision};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Strings that look like what a cluster holds, and some that do not.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-z0-9./:@_-]{0,40}",
        Just(String::new()),
        Just("{".to_owned()),
        Just("null".to_owned()),
    ]
}

/// A `sidecar.istio.io/status` value: garbage, JSON of any shape, or what the injector writes.
fn sidecar_status() -> impl Strategy<Value = String> {
    prop_oneof![
        text(),
        "[a-z0-9-]{0,12}".prop_map(|rev| format!(r#"{{"revision":"{rev}","containers":["istio-proxy"]}}"#)),
        any::<i64>().prop_map(|n| format!(r#"{{"revision":{n}}}"#)),
        Just(r#"{"revision":null}"#.to_owned()),
        Just(r#"{"revision":["1-27"]}"#.to_owned()),
        Just("[1,2,3]".to_owned()),
        "\\PC{0,20}".prop_map(|s| format!(r#"{{"revision":{s}"#)),
    ]
}

fn string_map() -> impl Strategy<Value = BTreeMap<String, String>> {
    btree_map(text(), text(), 0..4)
}

prop_compose! {
    fn pod()(
        status in option::of(sidecar_status()),
        rev in option::of(text()),
        mut annotations in string_map(),
        mut labels in string_map(),
        control_plane in any::<bool>(),
        ca_addr in option::of(text()),
        ca_name in prop_oneof![Just("CA_ADDR"), Just("CA_ADDRESS"), Just("OTHER")],
        native in any::<bool>(),
        with_spec in any::<bool>(),
    ) -> Pod {
        if let Some(s) = status {
            annotations.insert("sidecar.istio.io/status".into(), s);
        }
        if let Some(r) = rev {
            annotations.insert("istio.io/rev".into(), r.clone());
            labels.insert("istio.io/rev".into(), r);
        }
        if control_plane {
            labels.insert("app".into(), "istiod".into());
        }
        let proxy = Container {
            name: "istio-proxy".into(),
            env: ca_addr.map(|value| vec![EnvVar { name: ca_name.into(), value: Some(value), value_from: None }]),
            ..Container::default()
        };
        let spec = if native {
            PodSpec { init_containers: Some(vec![proxy]), ..PodSpec::default() }
        } else {
            PodSpec { containers: vec![proxy], ..PodSpec::default() }
        };
        Pod {
            metadata: ObjectMeta {
                annotations: Some(annotations),
                labels: Some(labels),
                ..ObjectMeta::default()
            },
            spec: with_spec.then_some(spec),
            status: None,
        }
    }
}

/// Keys from a small set, so that selectors and labels meet.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("istio.io/rev".to_owned()),
        Just("istio-injection".to_owned()),
        "[a-c]{1,2}",
        any::<String>(),
    ]
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("1-27".to_owned()),
        Just("enabled".to_owned()),
        "[a-c]{0,2}",
        any::<String>()
    ]
}

fn operator() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("In".to_owned()),
        Just("NotIn".to_owned()),
        Just("Exists".to_owned()),
        Just("DoesNotExist".to_owned()),
        any::<String>(),
    ]
}

fn requirement() -> impl Strategy<Value = LabelSelectorRequirement> {
    (key(), operator(), option::of(vec(value(), 0..3))).prop_map(|(key, operator, values)| LabelSelectorRequirement {
        key,
        operator,
        values,
    })
}

fn label_selector() -> impl Strategy<Value = LabelSelector> {
    (
        option::of(btree_map(key(), value(), 0..3)),
        option::of(vec(requirement(), 0..4)),
    )
        .prop_map(|(match_labels, match_expressions)| LabelSelector {
            match_labels,
            match_expressions,
        })
}

fn labels() -> impl Strategy<Value = Labels> {
    btree_map(key(), value(), 0..4)
}

/// A requirement as `pkg/labels/selector.go` `Requirement.Matches` reads it.
fn requirement_holds(r: &LabelSelectorRequirement, labels: &Labels) -> bool {
    let value = labels.get(&r.key);
    let listed = r.values.iter().flatten().any(|v| Some(v) == value);
    match r.operator.as_str() {
        "In" => value.is_some() && listed,
        "NotIn" => value.is_none() || !listed,
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        _ => false,
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn image_ref_parses_any_string(image in any::<String>()) {
        let parsed = ImageRef::parse(&image);
        let _ = parsed.name();
        prop_assert!(image.starts_with(&parsed.repository));
    }

    #[test]
    fn image_ref_reads_back_repository_and_tag(
        repository in "([a-z0-9.-]{1,12}(:[0-9]{1,5})?/)?[a-z0-9._-]{1,12}(/[a-z0-9._-]{1,12}){0,2}",
        tag in "[A-Za-z0-9_][A-Za-z0-9_.-]{0,40}",
        digest in option::of("sha256:[0-9a-f]{64}"),
    ) {
        let image = match &digest {
            Some(d) => format!("{repository}:{tag}@{d}"),
            None => format!("{repository}:{tag}"),
        };
        let parsed = ImageRef::parse(&image);
        prop_assert_eq!(&parsed.repository, &repository);
        prop_assert_eq!(parsed.tag.as_deref(), Some(tag.as_str()));
        let version = parsed.version.clone().unwrap_or_default();
        match parsed.variant.as_deref() {
            Some(v) => prop_assert_eq!(format!("{version}-{v}"), tag),
            None => prop_assert_eq!(version, tag),
        }
        prop_assert_eq!(parsed.name(), repository.rsplit('/').next().unwrap());
    }

    #[test]
    fn image_ref_without_tag_keeps_a_registry_port(
        registry in "[a-z0-9.-]{1,12}:[0-9]{1,5}",
        name in "[a-z0-9._-]{1,12}",
    ) {
        let image = format!("{registry}/{name}");
        let parsed = ImageRef::parse(&image);
        prop_assert_eq!(parsed.repository, image);
        prop_assert_eq!(parsed.tag, None);
    }

    #[test]
    fn pod_revision_reads_any_pod(pod in pod()) {
        // Whatever it answers is written somewhere in the pod, or is `default` for a
        // proxy talking to the unrevisioned `istiod`.
        if let Some(rev) = pod_revision(&pod) {
            let written = serde_json::to_string(&pod).unwrap();
            let escaped = serde_json::to_string(&rev).unwrap();
            let escaped = &escaped[1..escaped.len() - 1];
            prop_assert!(rev == "default" || written.contains(escaped), "{:?} is not in {}", rev, written);
        }
    }

    #[test]
    fn pod_revision_is_none_for_a_bare_pod(annotations in string_map()) {
        let annotations: BTreeMap<String, String> = annotations
            .into_iter()
            .filter(|(k, _)| k != "sidecar.istio.io/status" && k != "istio.io/rev")
            .collect();
        let pod = Pod { metadata: ObjectMeta { annotations: Some(annotations), ..ObjectMeta::default() }, ..Pod::default() };
        prop_assert_eq!(pod_revision(&pod), None);
    }

    #[test]
    fn pod_revision_prefers_the_injectors_status(rev in "[a-z0-9][a-z0-9-]{0,12}", other in pod()) {
        let mut pod = other;
        pod.metadata.annotations.get_or_insert_with(BTreeMap::new).insert(
            "sidecar.istio.io/status".into(),
            format!(r#"{{"initContainers":["istio-init"],"containers":["istio-proxy"],"revision":"{rev}"}}"#),
        );
        prop_assert_eq!(pod_revision(&pod), Some(rev));
    }

    #[test]
    fn selector_evaluates_any_selector(selector in option::of(label_selector()), labels in labels()) {
        let got = selector::matches(selector.as_ref(), &labels);
        let want = selector.as_ref().is_none_or(|s| {
            s.match_labels.iter().flatten().all(|(k, v)| labels.get(k) == Some(v))
                && s.match_expressions.iter().flatten().all(|r| requirement_holds(r, &labels))
        });
        prop_assert_eq!(got, want);
        let listed = selector::requirements(selector.as_ref()).count();
        let expected = selector.as_ref().map_or(0, |s| {
            s.match_labels.as_ref().map_or(0, BTreeMap::len) + s.match_expressions.as_ref().map_or(0, Vec::len)
        });
        prop_assert_eq!(listed, expected);
    }

    #[test]
    fn selector_empty_matches_everything(labels in labels()) {
        prop_assert!(selector::matches(Some(&LabelSelector::default()), &labels));
        prop_assert!(selector::matches(None, &labels));
    }

    #[test]
    fn parse_duration_reads_kubectl_forms(h in 0u64..1000, m in 0u64..60, s in 0u64..60, ms in 0u64..1000) {
        let want = Duration::from_secs(h * 3600 + m * 60 + s);
        prop_assert_eq!(parse_duration(&format!("{h}h{m}m{s}s")), Ok(want));
        prop_assert_eq!(parse_duration(&format!("{h}h")), Ok(Duration::from_secs(h * 3600)));
        prop_assert_eq!(parse_duration(&format!("{m}m{s}s")), Ok(Duration::from_secs(m * 60 + s)));
        prop_assert_eq!(parse_duration(&format!("{s}")), Ok(Duration::from_secs(s)));
        prop_assert_eq!(parse_duration(&format!("{ms}ms")), Ok(Duration::from_millis(ms)));
    }

    /// Strings of digits, dots and units of any length, numbers within what a Duration holds.
    #[test]
    fn parse_duration_never_panics_on_reasonable_numbers(text in "[0-9.]{0,6}(ms|s|m|h|x|µs|)?([0-9.]{0,6}(ms|s|m|h)?){0,3}| ?\\PC{0,12}") {
        let _ = parse_duration(&text);
    }
}

proptest! {
    #![proptest_config(config())]

    /// Any string at all: Ok or Err, never a panic.
    #[test]
        fn parse_duration_never_panics(text in prop_oneof![any::<String>(), "[0-9]{15,40}(ms|s|m|h)", "([0-9]{12}h){2,8}"]) {
        let outcome = std::panic::catch_unwind(|| parse_duration(&text));
        prop_assert!(outcome.is_ok(), "parse_duration({:?}) panicked", text);
    }
}
