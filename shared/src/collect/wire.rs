//! One page of a list call as the API server encodes it: Kubernetes protobuf when it can
//! (`application/vnd.kubernetes.protobuf`, as client-go asks with `rest.Config.ContentType`),
//! JSON when it cannot (an aggregated API server without protobuf) or when
//! [`ENCODING_ENV`]`=json` asks for it. Either is decoded into the same slim structs
//! ([`super::slim`]), which derive both `prost::Message` and `serde::Deserialize`.

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE, HeaderValue};
use http_body_util::BodyExt;
use kube::api::ListParams;
use prost::Message;

use crate::connect::Connection;
use crate::error::{Result, api_error};

/// What comes before a protobuf-encoded object: `protoEncodingPrefix` in
/// staging/src/k8s.io/apimachinery/pkg/runtime/serializer/protobuf/protobuf.go.
const MAGIC: &[u8] = b"k8s\0";
const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";

/// `KUBECTL_MESH_LIST_ENCODING=json` asks for JSON lists only: the fallback's own path, for
/// tests and for comparing the two.
pub const ENCODING_ENV: &str = "KUBECTL_MESH_LIST_ENCODING";

/// Whole objects, or their metadata alone (`PartialObjectMetadataList`).
#[derive(Clone, Copy, Debug)]
pub(crate) enum As {
    Objects,
    Metadata,
}

/// The Accept header: protobuf first, JSON as the fallback the server picks when it has
/// no protobuf (staging/src/k8s.io/client-go/metadata/metadata.go asks the same way).
pub(crate) fn accept(what: As, json_only: bool) -> &'static str {
    match (what, json_only) {
        (As::Objects, false) => "application/vnd.kubernetes.protobuf, application/json",
        (As::Objects, true) => "application/json",
        (As::Metadata, false) => {
            "application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1, \
             application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1, application/json"
        }
        (As::Metadata, true) => "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1, application/json",
    }
}

fn json_only() -> bool {
    std::env::var(ENCODING_ENV).is_ok_and(|v| v.eq_ignore_ascii_case("json"))
}

/// A response body: the protobuf message inside the `runtime.Unknown` envelope, or JSON.
#[derive(Debug)]
pub(crate) enum Body {
    Protobuf(Bytes),
    Json(Bytes),
}

/// `runtime.Unknown` (staging/src/k8s.io/apimachinery/pkg/runtime/generated.proto): the
/// envelope of every protobuf response; `raw` is the object itself.
#[derive(Clone, PartialEq, Message)]
struct Unknown {
    #[prost(bytes = "bytes", optional, tag = "2")]
    raw: Option<Bytes>,
}

/// A list's head: its metadata without its items (skipped undecoded).
#[derive(Clone, PartialEq, Message, serde::Deserialize)]
#[serde(default)]
struct ListHead {
    #[prost(message, optional, tag = "1")]
    metadata: Option<ListMeta>,
}

#[derive(Clone, PartialEq, Message, serde::Deserialize)]
#[serde(default)]
struct ListMeta {
    #[prost(string, optional, tag = "3")]
    #[serde(rename = "continue")]
    continue_: Option<String>,
}

/// `metav1.Status`, what a failed call answers, in whichever encoding was asked for.
#[derive(Clone, PartialEq, Message)]
struct Status {
    #[prost(string, optional, tag = "3")]
    message: Option<String>,
    #[prost(string, optional, tag = "4")]
    reason: Option<String>,
    #[prost(int32, optional, tag = "6")]
    code: Option<i32>,
}

impl Body {
    /// A whole response body, by its Content-Type.
    pub(crate) fn new(bytes: Bytes, content_type: Option<&str>) -> Result<Body> {
        if !content_type.is_some_and(|t| t.starts_with(PROTOBUF)) {
            return Ok(Body::Json(bytes));
        }
        let Some(envelope) = bytes.strip_prefix(MAGIC) else {
            return Err(anyhow::anyhow!("a protobuf response without the k8s protobuf prefix").into());
        };
        let envelope = bytes.slice_ref(envelope);
        let unknown = Unknown::decode(envelope).map_err(|e| anyhow::anyhow!("unexpected protobuf envelope: {e}"))?;
        Ok(Body::Protobuf(unknown.raw.unwrap_or_default()))
    }

    /// The size of the body as received (in protobuf, of the message in the envelope).
    pub(crate) fn len(&self) -> usize {
        match self {
            Body::Protobuf(b) | Body::Json(b) => b.len(),
        }
    }

    /// The list's continue token, its items skipped.
    pub(crate) fn continue_token(&self) -> Result<Option<String>> {
        let head: ListHead = self.decode("list")?;
        Ok(head.metadata.and_then(|m| m.continue_).filter(|t| !t.is_empty()))
    }

    /// The body as `T`; `what` names it in the error.
    pub(crate) fn decode<T: Message + Default + serde::de::DeserializeOwned>(&self, what: &str) -> Result<T> {
        match self {
            Body::Protobuf(raw) => T::decode(raw.clone()).map_err(|e| anyhow::anyhow!("unexpected {what}: {e}").into()),
            Body::Json(text) => {
                serde_json::from_slice(text).map_err(|e| anyhow::anyhow!("unexpected {what}: {e}").into())
            }
        }
    }
}

/// The `metav1.Status` of a failed call, as kube reports it; a body that is no Status
/// (a proxy's error page) is the message itself.
fn failure(code: u16, bytes: &Bytes, content_type: Option<&str>) -> kube::core::Status {
    let from_protobuf = || match Body::new(bytes.clone(), content_type).ok()? {
        Body::Protobuf(raw) => Status::decode(raw).ok(),
        Body::Json(_) => None,
    };
    if let Some(s) = from_protobuf() {
        let status = kube::core::Status::failure(s.message(), s.reason());
        return status.with_code(u16::try_from(s.code()).unwrap_or(code));
    }
    if let Ok(status) = serde_json::from_slice::<kube::core::Status>(bytes) {
        return status;
    }
    let text = String::from_utf8_lossy(bytes);
    kube::core::Status::failure(text.trim(), "Failed to parse error data").with_code(code)
}

/// A whole response body in one buffer of `size_hint` bytes (grown if need be), each chunk
/// dropped once copied: about one copy of the page at a time, where collecting the chunks
/// and then joining them holds two. The API server streams lists without a Content-Length.
async fn read_body(mut body: kube::client::Body, size_hint: usize) -> kube::Result<Bytes> {
    let mut buf = bytes::BytesMut::with_capacity(size_hint);
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf.freeze())
}

/// One page of the list at `path` (`/api/v1/pods`), whole, in protobuf if the server can.
/// `action` names the call in errors (`list pods`); `size_hint` is the expected size of the
/// body (the previous page's).
pub(crate) async fn fetch(
    conn: &Connection,
    path: &str,
    params: &ListParams,
    what: As,
    action: &str,
    size_hint: usize,
) -> Result<Body> {
    let mut request = kube::core::Request::new(path)
        .list(params)
        .map_err(|e| anyhow::anyhow!("cannot build the request to {action}: {e}"))?;
    request
        .headers_mut()
        .insert(ACCEPT, HeaderValue::from_static(accept(what, json_only())));
    let failed = |e| api_error(e, &conn.url, action);
    let response = conn
        .client
        .send(request.map(kube::client::Body::from))
        .await
        .map_err(failed)?;
    let code = response.status();
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let bytes = read_body(response.into_body(), size_hint).await.map_err(failed)?;
    if code.is_client_error() || code.is_server_error() {
        let status = failure(code.as_u16(), &bytes, content_type.as_deref());
        return Err(failed(kube::Error::Api(status.boxed())));
    }
    Body::new(bytes, content_type.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(file: &str) -> Bytes {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(file);
        Bytes::from(std::fs::read(path).unwrap())
    }

    #[test]
    fn both_encodings_give_the_same_continue_token() {
        for (pb, json) in [
            ("pod-list-page.pb", "pod-list-page.json"),
            ("replicaset-metadata-page.pb", "replicaset-metadata-page.json"),
        ] {
            let pb = Body::new(fixture(pb), Some(PROTOBUF)).unwrap();
            let json = Body::new(fixture(json), Some("application/json")).unwrap();
            assert!(matches!(pb, Body::Protobuf(_)) && matches!(json, Body::Json(_)));
            let token = pb.continue_token().unwrap();
            assert!(token.as_deref().is_some_and(|t| t.starts_with("eyJ2Ijoi")), "{token:?}");
            assert_eq!(token, json.continue_token().unwrap());
        }
    }

    #[test]
    fn the_last_page_has_no_continue_token() {
        let last = Body::new(Bytes::from_static(br#"{"metadata":{"continue":""},"items":[]}"#), None).unwrap();
        assert_eq!(last.continue_token().unwrap(), None);
        let head = ListHead {
            metadata: Some(ListMeta { continue_: None }),
        };
        let mut bytes = MAGIC.to_vec();
        Unknown {
            raw: Some(head.encode_to_vec().into()),
        }
        .encode(&mut bytes)
        .unwrap();
        let pb = Body::new(bytes.into(), Some("application/vnd.kubernetes.protobuf;stream=watch")).unwrap();
        assert_eq!(pb.continue_token().unwrap(), None);
    }

    #[test]
    fn a_protobuf_failure_keeps_its_code_and_message() {
        let status = failure(404, &fixture("status-not-found.pb"), Some(PROTOBUF));
        assert_eq!(status.code, 404);
        assert_eq!(status.message, r#"pods "x" not found"#);
        assert_eq!(status.reason, "NotFound");
        let json = br#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"forbidden","reason":"Forbidden","code":403}"#;
        let status = failure(403, &Bytes::from_static(json), Some("application/json"));
        assert_eq!((status.code, status.message.as_str()), (403, "forbidden"));
        let status = failure(
            502,
            &Bytes::from_static(b"<html>bad gateway</html>\n"),
            Some("text/html"),
        );
        assert_eq!(
            (status.code, status.message.as_str()),
            (502, "<html>bad gateway</html>")
        );
    }

    #[test]
    fn a_protobuf_body_needs_the_prefix() {
        assert!(Body::new(Bytes::from_static(b"\x0a\x00"), Some(PROTOBUF)).is_err());
    }

    #[test]
    fn json_is_asked_for_as_the_fallback() {
        for what in [As::Objects, As::Metadata] {
            let both = accept(what, false);
            assert!(
                both.starts_with(PROTOBUF) && both.ends_with("application/json"),
                "{both}"
            );
            assert!(!accept(what, true).contains("protobuf"));
        }
    }
}
