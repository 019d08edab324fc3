//! The sandbox itself: its scenarios look like the seed's cluster, and the
//! injector follows Istio's real webhook selectors.

use k8s_openapi::api::admissionregistration::v1::{MutatingWebhookConfiguration, ValidatingWebhookConfiguration};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{Api, ListParams};
use kubectl_mesh_e2e::{APPS, Sandbox, injected_by, proxy_image, stdout};

fn ready(pod: &Pod) -> bool {
    let status = pod.status.as_ref();
    status.and_then(|s| s.phase.as_deref()) == Some("Running")
        && status
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

async fn pods(sandbox: &Sandbox, ns: &str) -> Vec<Pod> {
    let api: Api<Pod> = Api::namespaced(sandbox.client().await, ns);
    api.list(&ListParams::default()).await.expect("list pods").items
}

fn app_of(pod: &Pod) -> String {
    let name = pod.metadata.name.clone().unwrap_or_default();
    // <deployment>-<replicaset hash>-<pod suffix>
    let mut parts: Vec<&str> = name.rsplitn(3, '-').collect();
    parts.pop().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn canary_runs_the_app_on_1_27_and_relabel_moves_a_restarted_pod_to_1_28() {
    let sandbox = Sandbox::fresh("canary");

    let app = pods(&sandbox, "default").await;
    let mut names: Vec<String> = app.iter().map(app_of).collect();
    names.sort();
    assert_eq!(names, APPS, "one pod per fleetman Deployment");
    for pod in &app {
        assert!(ready(pod), "{} is not Running and Ready", app_of(pod));
        assert_eq!(proxy_image(pod).as_deref(), Some("docker.io/istio/proxyv2:1.27.4"));
        assert_eq!(injected_by(pod).as_deref(), Some("1-27"));
    }

    let system = pods(&sandbox, "istio-system").await;
    for istiod in ["istiod-1-27", "istiod-1-28"] {
        assert!(
            system.iter().any(|p| app_of(p) == istiod && ready(p)),
            "{istiod} is not running"
        );
    }
    for gateway in ["istio-ingressgateway", "istio-egressgateway"] {
        let pod = system.iter().find(|p| app_of(p) == gateway).expect(gateway);
        assert!(ready(pod));
        assert_eq!(proxy_image(pod).as_deref(), Some("docker.io/istio/proxyv2:1.28.3"));
    }

    stdout(
        sandbox
            .kubectl()
            .args(["label", "ns", "default", "istio.io/rev=1-28", "--overwrite"]),
    );
    stdout(sandbox.kubectl().args(["rollout", "restart", "deploy/webapp"]));
    stdout(
        sandbox
            .kubectl()
            .args(["rollout", "status", "deploy/webapp", "--timeout=60s"]),
    );
    let webapp: Vec<Pod> = pods(&sandbox, "default")
        .await
        .into_iter()
        .filter(|p| app_of(p) == "webapp" && p.metadata.deletion_timestamp.is_none())
        .collect();
    assert_eq!(webapp.len(), 1);
    assert_eq!(
        proxy_image(&webapp[0]).as_deref(),
        Some("docker.io/istio/proxyv2:1.28.3")
    );
    assert_eq!(injected_by(&webapp[0]).as_deref(), Some("1-28"));
}

#[tokio::test]
async fn injection_follows_istios_selectors() {
    let sandbox = Sandbox::fresh("canary");
    let kubectl = |args: &[&str]| stdout(sandbox.kubectl().args(args));

    // Both labels: only the default injector matches, the revision label is
    // ignored (Istio's IST0123). The default tag points at 1-27.
    kubectl(&["create", "ns", "both"]);
    kubectl(&["label", "ns", "both", "istio-injection=enabled", "istio.io/rev=1-28"]);
    kubectl(&["run", "-n", "both", "p", "--image=nginx"]);
    kubectl(&[
        "run",
        "-n",
        "both",
        "off",
        "--image=nginx",
        "--labels=sidecar.istio.io/inject=false",
    ]);
    kubectl(&[
        "wait",
        "-n",
        "both",
        "--for=condition=Ready",
        "pod/p",
        "pod/off",
        "--timeout=30s",
    ]);
    let both = pods(&sandbox, "both").await;
    let by_name = |n: &str| both.iter().find(|p| p.metadata.name.as_deref() == Some(n)).unwrap();
    assert_eq!(injected_by(by_name("p")).as_deref(), Some("1-27"));
    assert_eq!(
        proxy_image(by_name("p")).as_deref(),
        Some("docker.io/istio/proxyv2:1.27.4")
    );
    assert_eq!(proxy_image(by_name("off")), None);
    assert_eq!(injected_by(by_name("off")), None);

    // Native sidecar layout, the proxyImage override, the gateway template.
    kubectl(&["create", "ns", "rev"]);
    kubectl(&["label", "ns", "rev", "istio.io/rev=1-28"]);
    kubectl(&[
        "run",
        "-n",
        "rev",
        "native",
        "--image=nginx",
        "--annotations=sidecar.istio.io/nativeSidecar=true",
    ]);
    kubectl(&[
        "run",
        "-n",
        "rev",
        "custom",
        "--image=nginx",
        "--annotations=sidecar.istio.io/proxyImage=example.com/proxy:dev",
    ]);
    kubectl(&[
        "run",
        "-n",
        "rev",
        "gw",
        "--image=auto",
        "--labels=app=gw",
        "--annotations=inject.istio.io/templates=gateway",
        "--overrides",
        r#"{"spec":{"containers":[{"name":"istio-proxy","image":"auto"}]}}"#,
    ]);
    let rev = pods(&sandbox, "rev").await;
    let by_name = |n: &str| rev.iter().find(|p| p.metadata.name.as_deref() == Some(n)).unwrap();

    let native = by_name("native");
    let spec = native.spec.as_ref().unwrap();
    let init: Vec<&str> = spec.init_containers.iter().flatten().map(|c| c.name.as_str()).collect();
    assert_eq!(init, ["istio-init", "istio-proxy"]);
    assert!(!spec.containers.iter().any(|c| c.name == "istio-proxy"));
    let status = &native.metadata.annotations.as_ref().unwrap()["sidecar.istio.io/status"];
    assert!(
        status.contains(r#""initContainers":["istio-init","istio-proxy"],"containers":null"#),
        "{status}"
    );
    assert_eq!(proxy_image(native).as_deref(), Some("docker.io/istio/proxyv2:1.28.3"));

    assert_eq!(proxy_image(by_name("custom")).as_deref(), Some("example.com/proxy:dev"));
    assert_eq!(injected_by(by_name("custom")).as_deref(), Some("1-28"));

    let gw = by_name("gw");
    let spec = gw.spec.as_ref().unwrap();
    assert!(
        spec.init_containers.is_none(),
        "the gateway template adds no init container"
    );
    assert_eq!(spec.containers.len(), 1);
    assert_eq!(proxy_image(gw).as_deref(), Some("docker.io/istio/proxyv2:1.28.3"));
    let labels = gw.metadata.labels.as_ref().unwrap();
    assert!(!labels.contains_key("security.istio.io/tlsMode"));

    // No istiod behind the Service: the call fails and Istio's
    // failurePolicy (Fail) rejects the pod.
    kubectl(&["scale", "-n", "istio-system", "deploy/istiod-1-27", "--replicas=0"]);
    kubectl(&[
        "rollout",
        "status",
        "-n",
        "istio-system",
        "deploy/istiod-1-27",
        "--timeout=30s",
    ]);
    let out = sandbox
        .kubectl()
        .args(["run", "orphan", "--image=nginx"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "a pod was created while istiod-1-27 had no pod");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("failed calling webhook"), "{err}");
}

#[tokio::test]
async fn inplace_keeps_old_proxies_and_injects_the_new_version() {
    let sandbox = Sandbox::fresh("inplace");
    for pod in pods(&sandbox, "default").await {
        assert!(ready(&pod));
        assert_eq!(proxy_image(&pod).as_deref(), Some("docker.io/istio/proxyv2:1.27.4"));
        assert_eq!(injected_by(&pod).as_deref(), Some("default"));
    }
    let istiod = pods(&sandbox, "istio-system").await;
    let istiod = istiod.iter().find(|p| app_of(p) == "istiod").expect("istiod");
    let image = istiod.spec.as_ref().unwrap().containers[0].image.clone();
    assert_eq!(image.as_deref(), Some("docker.io/istio/pilot:1.28.3"));

    stdout(sandbox.kubectl().args(["rollout", "restart", "deploy/webapp"]));
    stdout(
        sandbox
            .kubectl()
            .args(["rollout", "status", "deploy/webapp", "--timeout=60s"]),
    );
    let webapp = pods(&sandbox, "default").await;
    let webapp = webapp
        .iter()
        .find(|p| app_of(p) == "webapp" && p.metadata.deletion_timestamp.is_none())
        .unwrap();
    assert_eq!(proxy_image(webapp).as_deref(), Some("docker.io/istio/proxyv2:1.28.3"));
}

#[tokio::test]
async fn a_never_ready_pod_runs_but_is_never_ready() {
    let sandbox = Sandbox::fresh("empty");
    stdout(sandbox.kubectl().args([
        "run",
        "stuck",
        "--image=nginx",
        "--annotations=kubectl-mesh.test/never-ready=true",
    ]));
    let out = stdout(sandbox.kubectl().args([
        "wait",
        "--for=jsonpath={.status.phase}=Running",
        "pod/stuck",
        "--timeout=30s",
    ]));
    assert!(out.contains("condition met"));
    std::thread::sleep(std::time::Duration::from_secs(2));
    let pod = pods(&sandbox, "default").await.pop().unwrap();
    assert!(!ready(&pod));
}

// ------------------------------------------------------------ Helm, istioctl tags, ambient

/// The terms of a selector as Istio's YAML spells them: `key=value` for
/// matchLabels, then `key In [a,b]`.
fn terms(selector: Option<&LabelSelector>) -> Vec<String> {
    let labels = selector
        .and_then(|s| s.match_labels.as_ref())
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"));
    let expressions = selector
        .and_then(|s| s.match_expressions.as_ref())
        .into_iter()
        .flatten()
        .map(|e| {
            let values = e.values.clone().unwrap_or_default().join(",");
            if values.is_empty() {
                format!("{} {}", e.key, e.operator)
            } else {
                format!("{} {} [{values}]", e.key, e.operator)
            }
        });
    labels.chain(expressions).collect()
}

async fn mwcs(sandbox: &Sandbox) -> Vec<MutatingWebhookConfiguration> {
    let api: Api<MutatingWebhookConfiguration> = Api::all(sandbox.client().await);
    api.list(&ListParams::default()).await.expect("list MWCs").items
}

async fn vwcs(sandbox: &Sandbox) -> Vec<ValidatingWebhookConfiguration> {
    let api: Api<ValidatingWebhookConfiguration> = Api::all(sandbox.client().await);
    api.list(&ListParams::default()).await.expect("list VWCs").items
}

fn named<'a, T: kube::Resource>(objects: &'a [T], name: &str) -> &'a T {
    objects
        .iter()
        .find(|o| o.meta().name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("{name} is missing"))
}

fn names<T: kube::Resource>(objects: &[T]) -> Vec<String> {
    let mut out: Vec<String> = objects.iter().filter_map(|o| o.meta().name.clone()).collect();
    out.sort();
    out
}

fn label<'a, T: kube::Resource>(object: &'a T, key: &str) -> Option<&'a str> {
    object.meta().labels.as_ref()?.get(key).map(String::as_str)
}

fn annotation<'a, T: kube::Resource>(object: &'a T, key: &str) -> Option<&'a str> {
    object.meta().annotations.as_ref()?.get(key).map(String::as_str)
}

/// `name -> (service, namespace selector terms, object selector terms)` of each webhook.
fn webhooks(mwc: &MutatingWebhookConfiguration) -> Vec<(String, String, Vec<String>, Vec<String>)> {
    mwc.webhooks
        .iter()
        .flatten()
        .map(|w| {
            let service = w
                .client_config
                .service
                .as_ref()
                .map(|s| s.name.clone())
                .unwrap_or_default();
            (
                w.name.clone(),
                service,
                terms(w.namespace_selector.as_ref()),
                terms(w.object_selector.as_ref()),
            )
        })
        .collect()
}

/// The webhooks of Istio's injector chart for a revision (`default`:
/// unrevisioned, or the default tag), each calling `service`.
fn injector_webhooks(rev: &str, service: &str, default: bool) -> Vec<(String, String, Vec<String>, Vec<String>)> {
    let s = |v: &[&str]| v.iter().map(|t| (*t).to_owned()).collect::<Vec<_>>();
    let not_false = "sidecar.istio.io/inject NotIn [false]";
    let mut out = vec![
        (
            "rev.namespace.sidecar-injector.istio.io".to_owned(),
            service.to_owned(),
            s(&[&format!("istio.io/rev In [{rev}]"), "istio-injection DoesNotExist"]),
            s(&[not_false]),
        ),
        (
            "rev.object.sidecar-injector.istio.io".to_owned(),
            service.to_owned(),
            s(&["istio.io/rev DoesNotExist", "istio-injection DoesNotExist"]),
            s(&[not_false, &format!("istio.io/rev In [{rev}]")]),
        ),
    ];
    if default {
        out.push((
            "namespace.sidecar-injector.istio.io".to_owned(),
            service.to_owned(),
            s(&["istio-injection In [enabled]"]),
            s(&[not_false]),
        ));
        out.push((
            "object.sidecar-injector.istio.io".to_owned(),
            service.to_owned(),
            s(&["istio-injection DoesNotExist", "istio.io/rev DoesNotExist"]),
            s(&["sidecar.istio.io/inject In [true]", "istio.io/rev DoesNotExist"]),
        ));
    }
    out
}

/// Helm wrote it, as release `release`.
fn assert_helm<T: kube::Resource>(object: &T, release: &str) {
    let name = object.meta().name.clone().unwrap_or_default();
    assert_eq!(label(object, "app.kubernetes.io/managed-by"), Some("Helm"), "{name}");
    assert_eq!(annotation(object, "meta.helm.sh/release-name"), Some(release), "{name}");
    assert_eq!(
        annotation(object, "meta.helm.sh/release-namespace"),
        Some("istio-system"),
        "{name}"
    );
}

/// Every fleetman pod Ready, injected by `rev` with `image`.
async fn assert_app(sandbox: &Sandbox, rev: &str, image: &str) {
    let app = pods(sandbox, "default").await;
    let mut names: Vec<String> = app.iter().map(app_of).collect();
    names.sort();
    assert_eq!(names, APPS, "one pod per fleetman Deployment");
    for pod in &app {
        assert!(ready(pod), "{} is not Running and Ready", app_of(pod));
        assert_eq!(injected_by(pod).as_deref(), Some(rev), "{}", app_of(pod));
        assert_eq!(proxy_image(pod).as_deref(), Some(image), "{}", app_of(pod));
    }
}

/// The Ready istiod pods of istio-system, as `deployment=image`, sorted.
async fn istiods(sandbox: &Sandbox) -> Vec<String> {
    let mut out: Vec<String> = pods(sandbox, "istio-system")
        .await
        .iter()
        .filter(|p| label(*p, "app") == Some("istiod"))
        .map(|p| {
            assert!(ready(p), "{} is not Ready", app_of(p));
            let image = p.spec.as_ref().unwrap().containers[0].image.clone().unwrap_or_default();
            format!("{}={image}", app_of(p))
        })
        .collect();
    out.sort();
    out
}

/// `kubectl run` a pod in `ns` and return it once Ready.
async fn run_pod(sandbox: &Sandbox, ns: &str, name: &str) -> Pod {
    stdout(sandbox.kubectl().args(["run", "-n", ns, name, "--image=nginx"]));
    stdout(sandbox.kubectl().args([
        "wait",
        "-n",
        ns,
        "--for=condition=Ready",
        &format!("pod/{name}"),
        "--timeout=30s",
    ]));
    let api: Api<Pod> = Api::namespaced(sandbox.client().await, ns);
    api.get(name).await.expect("get the pod")
}

#[tokio::test]
async fn helm_canary_injects_through_the_default_tag_of_revision_1_27() {
    let sandbox = Sandbox::fresh("helm-canary");
    assert_app(&sandbox, "1-27", "docker.io/istio/proxyv2:1.27.4").await;
    assert_eq!(
        istiods(&sandbox).await,
        [
            "istiod-1-27=docker.io/istio/pilot:1.27.4",
            "istiod-1-28=docker.io/istio/pilot:1.28.3"
        ]
    );

    let mwcs = mwcs(&sandbox).await;
    assert_eq!(
        names(&mwcs),
        [
            "istio-revision-tag-default",
            "istio-sidecar-injector-1-27",
            "istio-sidecar-injector-1-28"
        ]
    );
    // revisionTags={default}: the tag's MWC, in istiod-1-27's release,
    // carries the istio-injection=enabled webhooks and calls istiod-1-27.
    let tag = named(&mwcs, "istio-revision-tag-default");
    assert_helm(tag, "istiod-1-27");
    assert_eq!(label(tag, "istio.io/tag"), Some("default"));
    assert_eq!(label(tag, "istio.io/rev"), Some("1-27"));
    assert_eq!(label(tag, "helm.sh/chart"), Some("istiod-1.27.4"));
    assert_eq!(webhooks(tag), injector_webhooks("default", "istiod-1-27", true));
    for (name, rev, release) in [
        ("istio-sidecar-injector-1-27", "1-27", "istiod-1-27"),
        ("istio-sidecar-injector-1-28", "1-28", "istiod-1-28"),
    ] {
        let mwc = named(&mwcs, name);
        assert_helm(mwc, release);
        assert_eq!(label(mwc, "istio.io/rev"), Some(rev));
        assert_eq!(webhooks(mwc), injector_webhooks(rev, &format!("istiod-{rev}"), false));
    }
    // Istio 1.27's chart makes no istiod-revision-tag-<tag> Service.
    let services: Api<Service> = Api::namespaced(sandbox.client().await, "istio-system");
    assert!(services.get_opt("istiod-revision-tag-default").await.unwrap().is_none());

    // istio-base with defaultRevision=1-27: the cluster-wide validator calls
    // 1-27's istiod and has no operator label.
    let vwcs = vwcs(&sandbox).await;
    let validator = named(&vwcs, "istiod-default-validator");
    assert_helm(validator, "istio-base");
    assert_eq!(label(validator, "istio.io/rev"), Some("1-27"));
    assert_eq!(label(validator, "operator.istio.io/component"), None);
    let service = validator.webhooks.as_ref().unwrap()[0]
        .client_config
        .service
        .as_ref()
        .unwrap();
    assert_eq!(service.name, "istiod-1-27");

    // default is labelled istio-injection=enabled: a new pod there goes to
    // the revision the default tag points at.
    let ns: Api<Namespace> = Api::all(sandbox.client().await);
    let default = ns.get("default").await.unwrap();
    assert_eq!(label(&default, "istio-injection"), Some("enabled"));
    assert_eq!(label(&default, "istio.io/rev"), None);
    let pod = run_pod(&sandbox, "default", "probe").await;
    assert_eq!(injected_by(&pod).as_deref(), Some("1-27"));
}

#[tokio::test]
async fn helm_canary_from_default_adds_revision_1_28_beside_the_unrevisioned_istiod() {
    let sandbox = Sandbox::fresh("helm-canary-from-default");
    assert_app(&sandbox, "default", "docker.io/istio/proxyv2:1.27.4").await;
    assert_eq!(
        istiods(&sandbox).await,
        [
            "istiod-1-28=docker.io/istio/pilot:1.28.3",
            "istiod=docker.io/istio/pilot:1.27.4"
        ]
    );
    let mwcs = mwcs(&sandbox).await;
    assert_eq!(
        names(&mwcs),
        ["istio-sidecar-injector", "istio-sidecar-injector-1-28"],
        "Helm makes no revision tag unless asked"
    );
    let default = named(&mwcs, "istio-sidecar-injector");
    assert_helm(default, "istiod");
    assert_eq!(label(default, "istio.io/rev"), Some("default"));
    assert_eq!(webhooks(default), injector_webhooks("default", "istiod", true));
    let canary = named(&mwcs, "istio-sidecar-injector-1-28");
    assert_helm(canary, "istiod-1-28");
    assert_eq!(webhooks(canary), injector_webhooks("1-28", "istiod-1-28", false));

    let vwcs = vwcs(&sandbox).await;
    assert_eq!(
        names(&vwcs),
        [
            "istio-validator-1-28-istio-system",
            "istio-validator-istio-system",
            "istiod-default-validator"
        ]
    );
    let validator = named(&vwcs, "istiod-default-validator");
    assert_helm(validator, "istio-base");
    let service = validator.webhooks.as_ref().unwrap()[0]
        .client_config
        .service
        .as_ref()
        .unwrap();
    assert_eq!(service.name, "istiod");

    // istio.io/rev=1-28 on a namespace selects the canary.
    stdout(sandbox.kubectl().args(["create", "ns", "canary"]));
    stdout(sandbox.kubectl().args(["label", "ns", "canary", "istio.io/rev=1-28"]));
    let pod = run_pod(&sandbox, "canary", "probe").await;
    assert_eq!(injected_by(&pod).as_deref(), Some("1-28"));
    assert_eq!(proxy_image(&pod).as_deref(), Some("docker.io/istio/proxyv2:1.28.3"));
}

#[tokio::test]
async fn helm_inplace_upgrades_the_release_and_keeps_old_proxies() {
    let sandbox = Sandbox::fresh("helm-inplace");
    assert_app(&sandbox, "default", "docker.io/istio/proxyv2:1.27.4").await;
    assert_eq!(istiods(&sandbox).await, ["istiod=docker.io/istio/pilot:1.28.3"]);
    let mwcs = mwcs(&sandbox).await;
    assert_eq!(names(&mwcs), ["istio-sidecar-injector"]);
    let injector = named(&mwcs, "istio-sidecar-injector");
    assert_helm(injector, "istiod");
    assert_eq!(label(injector, "helm.sh/chart"), Some("istiod-1.28.3"));
    assert_eq!(webhooks(injector), injector_webhooks("default", "istiod", true));
    let validator = named(&vwcs(&sandbox).await, "istiod-default-validator").clone();
    assert_eq!(label(&validator, "helm.sh/chart"), Some("base-1.28.3"));
    // 1.28's chart renders no PodDisruptionBudget for istiod: the upgrade
    // deleted 1.27's.
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(sandbox.client().await, "istio-system");
    assert!(pdbs.get_opt("istiod").await.unwrap().is_none());

    stdout(sandbox.kubectl().args(["rollout", "restart", "deploy/webapp"]));
    stdout(
        sandbox
            .kubectl()
            .args(["rollout", "status", "deploy/webapp", "--timeout=60s"]),
    );
    let webapp = pods(&sandbox, "default").await;
    let webapp = webapp
        .iter()
        .find(|p| app_of(p) == "webapp" && p.metadata.deletion_timestamp.is_none())
        .unwrap();
    assert_eq!(injected_by(webapp).as_deref(), Some("default"));
    assert_eq!(proxy_image(webapp).as_deref(), Some("docker.io/istio/proxyv2:1.28.3"));
}

/// A namespace `ns` with `label`, and a pod run there once Ready.
async fn pod_in(sandbox: &Sandbox, ns: &str, label: &str) -> Pod {
    stdout(sandbox.kubectl().args(["create", "ns", ns]));
    stdout(sandbox.kubectl().args(["label", "ns", ns, label]));
    run_pod(sandbox, ns, "probe").await
}

async fn tag_service_revision(sandbox: &Sandbox, tag: &str) -> Option<String> {
    let services: Api<Service> = Api::namespaced(sandbox.client().await, "istio-system");
    let svc = services.get(&format!("istiod-revision-tag-{tag}")).await.unwrap();
    assert_eq!(label(&svc, "istio.io/tag"), Some(tag));
    label(&svc, "istio.io/rev").map(str::to_owned)
}

#[tokio::test]
async fn istioctl_tags_move_default_to_1_28_and_set_prod_on_1_27() {
    let sandbox = Sandbox::fresh("istioctl-tags");
    // Nothing restarted: the app keeps its 1-27 sidecars.
    assert_app(&sandbox, "1-27", "docker.io/istio/proxyv2:1.27.4").await;

    let mwcs = mwcs(&sandbox).await;
    assert_eq!(
        names(&mwcs),
        [
            "istio-revision-tag-default",
            "istio-revision-tag-prod",
            "istio-sidecar-injector-1-27",
            "istio-sidecar-injector-1-28"
        ]
    );
    let default = named(&mwcs, "istio-revision-tag-default");
    assert_eq!(label(default, "istio.io/rev"), Some("1-28"));
    assert_eq!(webhooks(default), injector_webhooks("default", "istiod-1-28", true));
    // --overwrite updated install's tag in place: the operator labels
    // istioctl 1.27.4 install wrote stay, though `tag set` writes none.
    assert_eq!(label(default, "operator.istio.io/component"), Some("Pilot"));
    assert_eq!(label(default, "operator.istio.io/version"), Some("1.27.4"));
    let prod = named(&mwcs, "istio-revision-tag-prod");
    assert_eq!(label(prod, "istio.io/rev"), Some("1-27"));
    assert_eq!(label(prod, "operator.istio.io/component"), None);
    assert_eq!(webhooks(prod), injector_webhooks("prod", "istiod-1-27", false));
    // No unrevisioned injector to deactivate; the revisions' stay as installed.
    for rev in ["1-27", "1-28"] {
        let mwc = named(&mwcs, &format!("istio-sidecar-injector-{rev}"));
        assert_eq!(webhooks(mwc), injector_webhooks(rev, &format!("istiod-{rev}"), false));
    }
    // istioctl 1.28 writes a Service per tag; install 1.27.4 wrote none for
    // default, `tag set default` added it.
    assert_eq!(tag_service_revision(&sandbox, "default").await.as_deref(), Some("1-28"));
    assert_eq!(tag_service_revision(&sandbox, "prod").await.as_deref(), Some("1-27"));
    let validator = named(&vwcs(&sandbox).await, "istiod-default-validator").clone();
    assert_eq!(label(&validator, "istio.io/rev"), Some("1-28"));
    let service = validator.webhooks.as_ref().unwrap()[0]
        .client_config
        .service
        .as_ref()
        .unwrap();
    assert_eq!(service.name, "istiod-1-28");

    // The webhooks decide: istio-injection=enabled and istio.io/rev=default
    // go to 1-28, istio.io/rev=prod to 1-27.
    for (ns, label, rev, image) in [
        (
            "enabled",
            "istio-injection=enabled",
            "1-28",
            "docker.io/istio/proxyv2:1.28.3",
        ),
        (
            "tag-default",
            "istio.io/rev=default",
            "1-28",
            "docker.io/istio/proxyv2:1.28.3",
        ),
        (
            "tag-prod",
            "istio.io/rev=prod",
            "1-27",
            "docker.io/istio/proxyv2:1.27.4",
        ),
    ] {
        let pod = pod_in(&sandbox, ns, label).await;
        assert_eq!(injected_by(&pod).as_deref(), Some(rev), "{label}");
        assert_eq!(proxy_image(&pod).as_deref(), Some(image), "{label}");
    }
}

#[tokio::test]
async fn istioctl_tags_from_default_deactivate_the_unrevisioned_injector() {
    let sandbox = Sandbox::fresh("istioctl-tags-from-default");
    assert_app(&sandbox, "default", "docker.io/istio/proxyv2:1.27.4").await;

    let mwcs = mwcs(&sandbox).await;
    assert_eq!(
        names(&mwcs),
        [
            "istio-revision-tag-default",
            "istio-sidecar-injector",
            "istio-sidecar-injector-1-28"
        ]
    );
    // Deactivated, not deleted: every webhook of the unrevisioned injector
    // has Istio's never-match selectors and still calls istiod.
    let unrevisioned = named(&mwcs, "istio-sidecar-injector");
    assert_eq!(label(unrevisioned, "istio.io/rev"), Some("default"));
    assert_helm(unrevisioned, "istiod");
    let never = vec!["istio.io/deactivated=never-match".to_owned()];
    let hooks = webhooks(unrevisioned);
    assert_eq!(hooks.len(), 4);
    for (name, service, namespaces, objects) in hooks {
        assert_eq!(service, "istiod", "{name}");
        assert_eq!(namespaces, never, "{name}");
        assert_eq!(objects, never, "{name}");
    }
    let default = named(&mwcs, "istio-revision-tag-default");
    assert_eq!(label(default, "istio.io/rev"), Some("1-28"));
    assert_eq!(webhooks(default), injector_webhooks("default", "istiod-1-28", true));
    // `tag set` copies the injector's annotations: Helm's release ones too.
    assert_eq!(annotation(default, "meta.helm.sh/release-name"), Some("istiod-1-28"));
    assert_eq!(label(default, "operator.istio.io/component"), None);
    assert_eq!(tag_service_revision(&sandbox, "default").await.as_deref(), Some("1-28"));
    // istio-base's validator, rewritten for the tag with the injector's
    // annotations: it now names istiod-1-28 as its Helm release, though
    // istio-base's manifest holds it.
    let validator = named(&vwcs(&sandbox).await, "istiod-default-validator").clone();
    assert_eq!(label(&validator, "istio.io/rev"), Some("1-28"));
    assert_eq!(label(&validator, "istio.io/tag"), Some("default"));
    assert_eq!(annotation(&validator, "meta.helm.sh/release-name"), Some("istiod-1-28"));

    // default keeps istio-injection=enabled: a restart now gets 1-28.
    stdout(sandbox.kubectl().args(["rollout", "restart", "deploy/webapp"]));
    stdout(
        sandbox
            .kubectl()
            .args(["rollout", "status", "deploy/webapp", "--timeout=60s"]),
    );
    let webapp = pods(&sandbox, "default").await;
    let webapp = webapp
        .iter()
        .find(|p| app_of(p) == "webapp" && p.metadata.deletion_timestamp.is_none())
        .unwrap();
    assert_eq!(injected_by(webapp).as_deref(), Some("1-28"));
    assert_eq!(proxy_image(webapp).as_deref(), Some("docker.io/istio/proxyv2:1.28.3"));
}

/// The container args of a pod's `istio-proxy`.
fn proxy_args(pod: &Pod) -> Vec<String> {
    let spec = pod.spec.as_ref().unwrap();
    spec.containers
        .iter()
        .find(|c| c.name == "istio-proxy")
        .and_then(|c| c.args.clone())
        .unwrap_or_default()
}

/// ztunnel and istio-cni: one Ready pod per node, from their Helm charts.
async fn assert_node_agents(sandbox: &Sandbox) {
    let system = pods(sandbox, "istio-system").await;
    let daemonsets: Api<DaemonSet> = Api::namespaced(sandbox.client().await, "istio-system");
    for (ds, release, image) in [
        ("ztunnel", "ztunnel", "docker.io/istio/ztunnel:1.28.3"),
        (
            "istio-cni-node",
            "istio-cni",
            "docker.io/istio/install-cni:1.28.3-distroless",
        ),
    ] {
        let object = daemonsets.get(ds).await.unwrap();
        assert_helm(&object, release);
        let on_nodes: Vec<&Pod> = system
            .iter()
            .filter(|p| {
                p.metadata
                    .name
                    .as_deref()
                    .is_some_and(|n| n.starts_with(&format!("{ds}-")))
            })
            .collect();
        assert_eq!(on_nodes.len(), 4, "{ds}: one pod per node");
        for pod in on_nodes {
            assert!(ready(pod), "{ds}");
            let found = pod.spec.as_ref().unwrap().containers[0].image.clone();
            assert_eq!(found.as_deref(), Some(image), "{ds}");
        }
    }
    // ztunnel's container is named istio-proxy too, yet it is no sidecar.
    let ztunnel = system.iter().find(|p| label(*p, "app") == Some("ztunnel")).unwrap();
    assert_eq!(proxy_image(ztunnel).as_deref(), Some("docker.io/istio/ztunnel:1.28.3"));
    assert_eq!(injected_by(ztunnel), None);
}

#[tokio::test]
async fn gateway_api_runs_ambient_with_a_gateway_and_a_waypoint_as_istiod_renders_them() {
    let sandbox = Sandbox::fresh("gateway-api");
    assert_eq!(
        istiods(&sandbox).await,
        ["istiod=docker.io/istio/pilot:1.28.3-distroless"]
    );

    assert_node_agents(&sandbox).await;

    // default is in ambient mode: the app runs without sidecars.
    let ns: Api<Namespace> = Api::all(sandbox.client().await);
    let default = ns.get("default").await.unwrap();
    assert_eq!(label(&default, "istio.io/dataplane-mode"), Some("ambient"));
    assert_eq!(label(&default, "istio.io/use-waypoint"), Some("waypoint"));
    let all = pods(&sandbox, "default").await;
    let (waypoints, app): (Vec<&Pod>, Vec<&Pod>) = all.iter().partition(|p| app_of(p) == "waypoint");
    let mut names: Vec<String> = app.iter().map(|p| app_of(p)).collect();
    names.sort();
    assert_eq!(names, APPS);
    for pod in &app {
        assert!(ready(pod));
        assert_eq!(proxy_image(pod), None, "{}", app_of(pod));
    }

    // The waypoint and the ingress gateway, as istiod's deployment
    // controller renders them: the revision only as the istio.io/rev
    // annotation, no sidecar status, istio-proxy running `proxy waypoint` /
    // `proxy router`.
    let ingress = pods(&sandbox, "istio-ingress").await;
    for (pod, gateway, role, managed) in [
        (waypoints[0], "waypoint", "waypoint", "istio.io-mesh-controller"),
        (&ingress[0], "gateway", "router", "istio.io-gateway-controller"),
    ] {
        assert!(ready(pod), "{gateway}");
        assert_eq!(annotation(pod, "istio.io/rev"), Some("default"), "{gateway}");
        assert_eq!(injected_by(pod), None, "{gateway}");
        assert_eq!(
            proxy_image(pod).as_deref(),
            Some("docker.io/istio/proxyv2:1.28.3-distroless")
        );
        assert_eq!(proxy_args(pod)[..2], ["proxy", role], "{gateway}");
        assert_eq!(label(pod, "gateway.networking.k8s.io/gateway-name"), Some(gateway));
        assert_eq!(label(pod, "gateway.istio.io/managed"), Some(managed));
        assert_eq!(label(pod, "sidecar.istio.io/inject"), Some("false"));
    }
    // Owned by their Gateways, so the garbage collector keeps them.
    let gateways = stdout(sandbox.kubectl().args([
        "get",
        "gateways.gateway.networking.k8s.io",
        "-A",
        "-o",
        "jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name}={.metadata.uid}{\"\\n\"}{end}",
    ]));
    let deployments: Api<Deployment> = Api::namespaced(sandbox.client().await, "default");
    let waypoint = deployments.get("waypoint").await.unwrap();
    let owner = &waypoint.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!((owner.kind.as_str(), owner.name.as_str()), ("Gateway", "waypoint"));
    assert!(
        gateways.contains(&format!("default/waypoint={}", owner.uid)),
        "{gateways}"
    );

    // A new pod in the ambient namespace gets no sidecar.
    let pod = run_pod(&sandbox, "default", "probe").await;
    assert_eq!(proxy_image(&pod), None);
}

#[tokio::test]
async fn injected_images_follow_istios_proxy_image_rules() {
    // Ambient's istiod: global.variant and the mesh config's
    // defaultConfig.image.imageType are both distroless.
    let sandbox = Sandbox::fresh("gateway-api");
    let kubectl = |args: &[&str]| stdout(sandbox.kubectl().args(args));
    kubectl(&["create", "ns", "sidecars"]);
    kubectl(&["label", "ns", "sidecars", "istio-injection=enabled"]);
    for (name, annotation, image) in [
        ("plain", None, "docker.io/istio/proxyv2:1.28.3-distroless"),
        (
            "typed",
            Some("sidecar.istio.io/proxyImageType=debug"),
            "docker.io/istio/proxyv2:1.28.3-debug",
        ),
        (
            "untyped",
            Some("sidecar.istio.io/proxyImageType=default"),
            "docker.io/istio/proxyv2:1.28.3",
        ),
        // Without a "/" the template does not use the annotation.
        (
            "named",
            Some("sidecar.istio.io/proxyImage=custom"),
            "docker.io/istio/proxyv2:1.28.3-distroless",
        ),
        (
            "full",
            Some("sidecar.istio.io/proxyImage=example.com/proxy:dev"),
            "example.com/proxy:dev",
        ),
    ] {
        let mut args = vec!["run", "-n", "sidecars", name, "--image=nginx"];
        let flag = annotation.map(|a| format!("--annotations={a}"));
        args.extend(flag.as_deref());
        kubectl(&args);
        kubectl(&[
            "wait",
            "-n",
            "sidecars",
            "--for=condition=Ready",
            &format!("pod/{name}"),
            "--timeout=30s",
        ]);
        let api: Api<Pod> = Api::namespaced(sandbox.client().await, "sidecars");
        let pod = api.get(name).await.unwrap();
        assert_eq!(injected_by(&pod).as_deref(), Some("default"), "{name}");
        assert_eq!(proxy_image(&pod).as_deref(), Some(image), "{name}");
        let init = &pod.spec.as_ref().unwrap().init_containers.as_ref().unwrap()[0];
        assert_eq!(init.name, "istio-init");
        assert_eq!(init.image.as_deref(), Some(image), "{name}: istio-init");
    }
}
