//! The version a proxy should run is the image its revision's injector writes, hub
//! included, not istiod's own tag: given a Helm install from a mirror with istiod on a
//! patch build, the model judges proxies as a restart would leave them.

#[allow(unreachable_pub)] // helpers shared by test files; each file uses some
mod common;

use common::{INJECTOR_IMAGE, Objects, load};
use shared::model::{Mesh, OutOfDateReason, ProxyState};

fn state<'a>(mesh: &'a Mesh, pod: &str) -> &'a ProxyState {
    mesh.proxies
        .iter()
        .find(|p| p.proxy.pod == pod)
        .unwrap_or_else(|| panic!("{pod}"))
}

/// `helm upgrade istiod-1-28 --set global.tag=<tag>`: the injector's values change.
fn set_global_tag(objects: &mut Objects, tag: &str) {
    let cm = objects
        .configmaps
        .iter_mut()
        .find(|c| c.metadata.name.as_deref() == Some("istio-sidecar-injector-1-28"))
        .unwrap();
    let values = cm.data.as_mut().unwrap().get_mut("values").unwrap();
    let mut v: serde_json::Value = serde_json::from_str(values).unwrap();
    v["global"]["tag"] = tag.into();
    *values = v.to_string();
}

#[test]
fn proxies_are_judged_by_the_injected_image_not_by_istiods_tag() {
    let mesh = load(INJECTOR_IMAGE).mesh();
    let r = &mesh.control_plane.revisions["1-28"];
    // istiod's own version, for display; what a restart injects is the injector's.
    assert_eq!(r.version(), Some("1.28.3-hotfix.1"));
    assert_eq!(r.proxy_version().as_deref(), Some("1.28.3"));
    assert_eq!(
        r.injected_image().as_deref(),
        Some("registry.internal.example/istio/proxyv2:1.28.3")
    );
    // From the mirror at global.tag: up to date, whatever istiod runs; a pod's own variant too.
    for pod in ["catalog-6c7d8e9f0-a1s2d", "search-4a5b6c7d8-j5k6l"] {
        let p = state(&mesh, pod);
        assert!(p.out_of_date.is_empty(), "{pod}: {:?}", p.out_of_date);
    }
    // The same version from another hub: a restart pulls the mirror's image.
    assert!(state(&mesh, "checkout-5b6c7d8e9-f3g4h").is_out_of_date());
    let stale = mesh.out_of_date_workloads();
    assert_eq!(
        stale.iter().map(|w| w.workload.to_string()).collect::<Vec<_>>(),
        ["deployment/checkout"]
    );
    assert_eq!(stale[0].to_version.as_deref(), Some("1.28.3"));
}

#[test]
fn another_hub_at_the_same_tag_and_a_new_global_tag_are_both_out_of_date() {
    let mut objects = load(INJECTOR_IMAGE);
    let mesh = objects.mesh();
    let checkout = state(&mesh, "checkout-5b6c7d8e9-f3g4h");
    assert_eq!(
        checkout.out_of_date,
        [OutOfDateReason::Image {
            image: "docker.io/istio/proxyv2:1.28.3".into(),
            expected: "registry.internal.example/istio/proxyv2:1.28.3".into()
        }]
    );
    assert_eq!(
        checkout.out_of_date[0].to_string(),
        "proxy image docker.io/istio/proxyv2:1.28.3, its control plane injects registry.internal.example/istio/proxyv2:1.28.3"
    );

    // An in-place patch upgrade rewrites global.tag: every proxy is behind it.
    set_global_tag(&mut objects, "1.28.4");
    let mesh = objects.mesh();
    for pod in [
        "catalog-6c7d8e9f0-a1s2d",
        "search-4a5b6c7d8-j5k6l",
        "checkout-5b6c7d8e9-f3g4h",
    ] {
        assert_eq!(
            state(&mesh, pod).out_of_date,
            [OutOfDateReason::Version {
                version: "1.28.3".into(),
                control_plane: "1.28.4".into()
            }],
            "{pod}"
        );
    }
}
