//! The Istio model: API objects in, values out. Nothing here calls the API.

pub mod controlplane;
pub mod expectation;
pub mod image;
pub mod labels;
pub mod mesh;
pub mod namespace;
pub mod proxy;
pub mod selector;

pub use controlplane::{
    ControlPlane, InjectProblem, InjectorConfig, InjectorMatch, InjectorWebhook, Istiod, Revision, Tag, Target,
};
pub use expectation::{Expectation, NoSidecar};
pub use image::ImageRef;
pub use mesh::{Component, Mesh, OutOfDateReason, OutOfDateWorkload, ProxyState, TagListing, Warning};
pub use namespace::{Ambient, Injection, NamespaceBinding};
pub use proxy::{PodRevision, Proxy, ProxyKind, ReplicaSetOwners, Workload, pod_revision};
