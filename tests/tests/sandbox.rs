//! The sandbox itself: its scenarios look like the seed's cluster, and the
//! injector follows Istio's real webhook selectors.

use k8s_openapi::api::core::v1::Pod;
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
