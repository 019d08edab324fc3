//! The Istio model: API objects in, values out. Nothing here calls the API.

pub mod controlplane;
pub mod image;
pub mod labels;
pub mod mesh;
pub mod namespace;
pub mod proxy;
pub mod selector;

pub use controlplane::{ControlPlane, InjectorConfig, Istiod, Revision, Tag, Target};
pub use image::ImageRef;
pub use mesh::{Mesh, OutOfDateReason, OutOfDateWorkload, ProxyState, Warning};
pub use namespace::{Injection, NamespaceBinding};
pub use proxy::{Proxy, ReplicaSetOwners, Workload};
