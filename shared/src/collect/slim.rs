//! The part of a pod or ReplicaSet list that the steps read, in either encoding: each
//! struct derives `prost::Message` with the field numbers of Kubernetes' generated.proto
//! (staging/src/k8s.io/api/core/v1/generated.proto,
//! staging/src/k8s.io/apimachinery/pkg/apis/meta/v1/generated.proto) and
//! `serde::Deserialize` with the JSON names. Every other field is skipped undecoded, in
//! protobuf without a copy.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1 as core;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use prost::Message;
use serde::Deserialize;

use crate::model::proxy::is_data_plane_container;

#[derive(Clone, PartialEq, Message, Deserialize)]
#[serde(default)]
pub(crate) struct PodList {
    #[prost(message, repeated, tag = "2")]
    pub(crate) items: Vec<Pod>,
}

#[derive(Clone, PartialEq, Message, Deserialize)]
#[serde(default)]
pub(crate) struct Pod {
    #[prost(message, optional, tag = "1")]
    metadata: Option<Meta>,
    #[prost(message, optional, tag = "2")]
    spec: Option<Spec>,
    #[prost(message, optional, tag = "3")]
    status: Option<Status>,
}

#[derive(Clone, PartialEq, Message, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct Meta {
    #[prost(string, optional, tag = "1")]
    pub(crate) name: Option<String>,
    #[prost(string, optional, tag = "3")]
    pub(crate) namespace: Option<String>,
    #[prost(message, optional, tag = "9")]
    deletion_timestamp: Option<Timestamp>,
    #[prost(btree_map = "string, string", tag = "11")]
    labels: BTreeMap<String, String>,
    #[prost(btree_map = "string, string", tag = "12")]
    annotations: BTreeMap<String, String>,
    #[prost(message, repeated, tag = "13")]
    pub(crate) owner_references: Vec<Owner>,
}

/// `metav1.Time`: seconds and nanoseconds in protobuf, RFC 3339 in JSON.
#[derive(Clone, PartialEq, Message)]
struct Timestamp {
    #[prost(int64, optional, tag = "1")]
    seconds: Option<i64>,
    #[prost(int32, optional, tag = "2")]
    nanos: Option<i32>,
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let t: jiff::Timestamp = Deserialize::deserialize(d)?;
        Ok(Timestamp {
            seconds: Some(t.as_second()),
            nanos: Some(t.subsec_nanosecond()),
        })
    }
}

#[derive(Clone, PartialEq, Message, Deserialize)]
#[serde(default)]
pub(crate) struct Owner {
    #[prost(string, optional, tag = "1")]
    kind: Option<String>,
    #[prost(string, optional, tag = "3")]
    name: Option<String>,
    #[prost(bool, optional, tag = "6")]
    controller: Option<bool>,
}

#[derive(Clone, PartialEq, Message, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Spec {
    #[prost(message, repeated, tag = "1")]
    volumes: Vec<Volume>,
    #[prost(message, repeated, tag = "2")]
    containers: Vec<Container>,
    #[prost(string, optional, tag = "8")]
    service_account_name: Option<String>,
    /// hostNetwork pods are never injected.
    #[prost(bool, optional, tag = "11")]
    host_network: Option<bool>,
    #[prost(message, repeated, tag = "20")]
    init_containers: Vec<Container>,
}

#[derive(Clone, PartialEq, Message, Deserialize)]
#[serde(default)]
struct Container {
    #[prost(string, optional, tag = "1")]
    name: Option<String>,
    #[prost(string, optional, tag = "2")]
    image: Option<String>,
    /// `proxy sidecar|router|waypoint|ztunnel`: what the proxy is.
    #[prost(string, repeated, tag = "4")]
    args: Vec<String>,
    #[prost(message, repeated, tag = "7")]
    env: Vec<EnvVar>,
}

/// A variable's literal value (`CA_ADDR` names the revision); `valueFrom` is not read.
#[derive(Clone, PartialEq, Message, Deserialize)]
#[serde(default)]
struct EnvVar {
    #[prost(string, optional, tag = "1")]
    name: Option<String>,
    #[prost(string, optional, tag = "2")]
    value: Option<String>,
}

/// A volume's ConfigMaps and Secrets. JSON inlines the `VolumeSource` that protobuf nests.
#[derive(Clone, PartialEq, Message, Deserialize)]
#[serde(default)]
struct Volume {
    #[prost(message, optional, tag = "2")]
    #[serde(flatten)]
    source: Option<VolumeSource>,
}

#[derive(Clone, PartialEq, Message, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct VolumeSource {
    #[prost(message, optional, tag = "6")]
    secret: Option<SecretVolume>,
    #[prost(message, optional, tag = "19")]
    config_map: Option<Named>,
    #[prost(message, optional, tag = "26")]
    projected: Option<Projected>,
}

#[derive(Clone, PartialEq, Message, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct SecretVolume {
    #[prost(string, optional, tag = "1")]
    secret_name: Option<String>,
}

/// A `LocalObjectReference`, which protobuf nests (field 1) and JSON inlines.
#[derive(Clone, PartialEq, Message, Deserialize)]
#[serde(default)]
struct Named {
    #[prost(message, optional, tag = "1")]
    #[serde(flatten)]
    reference: Option<Reference>,
}

#[derive(Clone, PartialEq, Message, Deserialize)]
#[serde(default)]
struct Reference {
    #[prost(string, optional, tag = "1")]
    name: Option<String>,
}

#[derive(Clone, PartialEq, Message, Deserialize)]
#[serde(default)]
struct Projected {
    #[prost(message, repeated, tag = "1")]
    sources: Vec<Projection>,
}

#[derive(Clone, PartialEq, Message, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Projection {
    #[prost(message, optional, tag = "1")]
    secret: Option<Named>,
    #[prost(message, optional, tag = "3")]
    config_map: Option<Named>,
}

#[derive(Clone, PartialEq, Message, Deserialize)]
#[serde(default)]
struct Status {
    #[prost(string, optional, tag = "1")]
    phase: Option<String>,
    /// `Ready` among them: whether the pod is ready.
    #[prost(message, repeated, tag = "2")]
    conditions: Vec<Condition>,
}

#[derive(Clone, PartialEq, Message, Deserialize)]
#[serde(default)]
struct Condition {
    #[prost(string, optional, tag = "1")]
    #[serde(rename = "type")]
    type_: Option<String>,
    #[prost(string, optional, tag = "2")]
    status: Option<String>,
}

/// A `PartialObjectMetadataList` (or, from a server without it, any list: only the items'
/// metadata is read).
#[derive(Clone, PartialEq, Message, Deserialize)]
#[serde(default)]
pub(crate) struct MetadataList {
    #[prost(message, repeated, tag = "2")]
    pub(crate) items: Vec<PartialObject>,
}

#[derive(Clone, PartialEq, Message, Deserialize)]
#[serde(default)]
pub(crate) struct PartialObject {
    #[prost(message, optional, tag = "1")]
    pub(crate) metadata: Option<Meta>,
}

/// Protobuf writes every string and bool of Go's generated marshallers, empty or false;
/// JSON omits them (`omitempty`). Both read as absent.
fn text(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.is_empty())
}

fn yes(b: Option<bool>) -> Option<bool> {
    b.filter(|b| *b)
}

fn some<T>(v: Vec<T>) -> Option<Vec<T>> {
    (!v.is_empty()).then_some(v)
}

fn some_map(m: BTreeMap<String, String>) -> Option<BTreeMap<String, String>> {
    (!m.is_empty()).then_some(m)
}

impl Owner {
    fn into_reference(self) -> OwnerReference {
        OwnerReference {
            kind: self.kind.unwrap_or_default(),
            name: self.name.unwrap_or_default(),
            controller: yes(self.controller),
            ..Default::default()
        }
    }
}

impl Meta {
    /// The owner references as the model reads them.
    pub(crate) fn owners(self) -> Option<Vec<OwnerReference>> {
        some(self.owner_references.into_iter().map(Owner::into_reference).collect())
    }

    fn into_meta(self) -> ObjectMeta {
        let deletion = self.deletion_timestamp.as_ref().map(|t| {
            let at = jiff::Timestamp::new(t.seconds.unwrap_or(0), t.nanos.unwrap_or(0));
            Time(at.unwrap_or(jiff::Timestamp::UNIX_EPOCH))
        });
        ObjectMeta {
            name: text(self.name),
            namespace: text(self.namespace),
            deletion_timestamp: deletion,
            labels: some_map(self.labels),
            annotations: some_map(self.annotations),
            owner_references: some(self.owner_references.into_iter().map(Owner::into_reference).collect()),
            ..Default::default()
        }
    }
}

impl Container {
    fn into_container(self) -> core::Container {
        let env = self.env.into_iter().map(|e| core::EnvVar {
            name: e.name.unwrap_or_default(),
            value: text(e.value),
            value_from: None,
        });
        core::Container {
            name: self.name.unwrap_or_default(),
            image: text(self.image),
            env: some(env.collect()),
            args: some(self.args),
            ..Default::default()
        }
    }
}

impl Volume {
    /// The volume as the ConfigMaps and Secrets it names (its own name is not read).
    fn into_volume(self) -> core::Volume {
        let source = self.source.unwrap_or_default();
        let name = |n: Option<Named>| n.and_then(|n| n.reference).and_then(|r| r.name).unwrap_or_default();
        let projection = |p: Projection| core::VolumeProjection {
            secret: p.secret.map(|s| core::SecretProjection {
                name: name(Some(s)),
                ..Default::default()
            }),
            config_map: p.config_map.map(|c| core::ConfigMapProjection {
                name: name(Some(c)),
                ..Default::default()
            }),
            ..Default::default()
        };
        core::Volume {
            secret: source.secret.map(|s| core::SecretVolumeSource {
                secret_name: text(s.secret_name),
                ..Default::default()
            }),
            config_map: source.config_map.map(|c| core::ConfigMapVolumeSource {
                name: name(Some(c)),
                ..Default::default()
            }),
            projected: source.projected.map(|p| core::ProjectedVolumeSource {
                sources: some(p.sources.into_iter().map(projection).collect()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

impl Pod {
    /// The pod runs a data-plane container (`istio-proxy` or `install-cni`).
    pub(crate) fn has_proxy(&self) -> bool {
        self.spec.as_ref().is_some_and(|s| {
            s.containers
                .iter()
                .chain(&s.init_containers)
                .any(|c| c.name.as_deref().is_some_and(is_data_plane_container))
        })
    }

    /// A Pod with just these fields, for [`crate::model::Proxy::from_pod`] and the steps.
    pub(crate) fn into_pod(self) -> core::Pod {
        core::Pod {
            metadata: self.metadata.map(Meta::into_meta).unwrap_or_default(),
            spec: self.spec.map(|s| core::PodSpec {
                containers: s.containers.into_iter().map(Container::into_container).collect(),
                init_containers: some(s.init_containers.into_iter().map(Container::into_container).collect()),
                host_network: yes(s.host_network),
                service_account_name: text(s.service_account_name),
                volumes: some(s.volumes.into_iter().map(Volume::into_volume).collect()),
                ..Default::default()
            }),
            status: self.status.map(|s| core::PodStatus {
                phase: text(s.phase),
                conditions: some(
                    s.conditions
                        .into_iter()
                        .map(|c| core::PodCondition {
                            type_: c.type_.unwrap_or_default(),
                            status: c.status.unwrap_or_default(),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
        }
    }
}
