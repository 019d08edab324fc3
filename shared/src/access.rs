//! Permission pre-check: before its first write a step asks the API server, with one
//! SelfSubjectAccessReview per request it is about to make, whether the user may make it,
//! and stops naming every request it may not, having changed nothing.
//!
//! Without it a missing grant shows up halfway: some namespaces relabelled, some objects
//! deleted, a workload restarted that cannot then be watched. Creating a
//! SelfSubjectAccessReview needs no grant of its own: the `system:basic-user` ClusterRole,
//! bound to every authenticated user, allows it (`plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go`
//! in Kubernetes), and the review answers exactly as the authorizer would answer the
//! request itself (`pkg/registry/authorization/selfsubjectaccessreview/rest.go`), the
//! `resourceNames` of a rule included.
//!
//! A server dry run is authorized like the real request (the API server checks RBAC before
//! it looks at `dryRun`), so it is checked the same way; a client dry run sends nothing and
//! needs no check.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use futures::{StreamExt, stream};
use k8s_openapi::api::authorization::v1::{ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec};
use kube::api::{Api, PostParams};
use tokio::time::Instant;

use crate::connect::Connection;
use crate::error::{Error, Result, api_error};
use crate::retry;

/// Reviews in flight at once: enough that a few hundred take well under a second, few enough
/// not to crowd a busy API server.
const CONCURRENCY: usize = 8;

/// How long the whole check may take, throttling (429) and retries included.
const BUDGET: Duration = Duration::from_secs(60);

/// One request a step will make: `verb` on `resource` of API `group` (`""` for the core
/// group), in `namespace` (`None`: cluster-scoped, or every namespace), on the object
/// `name` (`None`: the collection, as a list or a create).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Need {
    pub verb: &'static str,
    pub group: String,
    pub resource: String,
    pub namespace: Option<String>,
    pub name: Option<String>,
}

impl Need {
    /// `verb` on the collection of `resource` in `group`, cluster-wide.
    pub fn new(verb: &'static str, group: &str, resource: &str) -> Need {
        Need {
            verb,
            group: group.to_string(),
            resource: resource.to_string(),
            namespace: None,
            name: None,
        }
    }

    /// In this namespace.
    #[must_use]
    pub fn namespace(mut self, namespace: Option<&str>) -> Need {
        self.namespace = namespace.map(str::to_string);
        self
    }

    /// On this object. A create names no object: the API server authorizes a create
    /// before the object has a name (`pkg/endpoints/request/requestinfo.go`), so a rule
    /// limited by `resourceNames` never allows it, and the review must not name it either.
    #[must_use]
    pub fn name(mut self, name: &str) -> Need {
        if self.verb != "create" {
            self.name = Some(name.to_string());
        }
        self
    }

    /// `resource.group`, as kubectl names a resource (`deployments.apps`, `pods`).
    fn resource_ref(&self) -> String {
        if self.group.is_empty() {
            self.resource.clone()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }

    /// The review's attributes. A Namespace object is authorized in its own namespace, as
    /// `requestinfo.go` sets it for `/api/v1/namespaces/NAME`.
    fn attributes(&self) -> ResourceAttributes {
        let namespace = match (&self.namespace, self.resource.as_str(), &self.name) {
            (Some(ns), _, _) => Some(ns.clone()),
            (None, "namespaces", Some(name)) if self.group.is_empty() => Some(name.clone()),
            (None, _, _) => None,
        };
        ResourceAttributes {
            verb: Some(self.verb.to_string()),
            group: Some(self.group.clone()),
            resource: Some(self.resource.clone()),
            namespace,
            name: self.name.clone(),
            ..ResourceAttributes::default()
        }
    }
}

impl fmt::Display for Need {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.verb, self.resource_ref())?;
        if let Some(name) = &self.name {
            write!(f, " {name}")?;
        }
        if let Some(ns) = &self.namespace {
            write!(f, " in namespace {ns}")?;
        }
        Ok(())
    }
}

/// Ask the API server about every need (each once, [`CONCURRENCY`] at a time) and stop if
/// any is not allowed. `step` names the roles to ask for: `rbac/<step>.yaml`.
///
/// # Errors
///
/// [`Error::Other`] (exit 1) naming each missing verb, resource and namespace, and the
/// objects concerned, when any need is denied; an API error when a review cannot be made
/// (unreachable, 401). A server that does not serve reviews (404), or refuses them (403),
/// is not asked: the requests themselves are authorized as they are sent.
pub async fn check(conn: &Connection, step: &str, needs: Vec<Need>) -> Result<()> {
    let needs: BTreeSet<Need> = needs.into_iter().collect();
    if needs.is_empty() {
        return Ok(());
    }
    let api = Api::<SelfSubjectAccessReview>::all(conn.client.clone());
    let deadline = Instant::now() + BUDGET;
    let answers: Vec<(Need, Result<Answer, kube::Error>)> = stream::iter(needs)
        .map(|need| {
            let api = api.clone();
            async move {
                let answer = review(&api, &need, deadline).await;
                (need, answer)
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let mut denied = vec![];
    for (need, answer) in answers {
        match answer {
            Ok(Answer::Allowed) => {}
            Ok(Answer::Denied(reason)) => denied.push((need, reason)),
            Err(kube::Error::Api(s)) if s.code == 403 || s.code == 404 => {
                tracing::debug!(
                    "no SelfSubjectAccessReview ({}): the requests are not checked first",
                    s.message
                );
                return Ok(());
            }
            Err(e) => return Err(api_error(e, &conn.url, format!("review whether it may {need}"))),
        }
    }
    if denied.is_empty() {
        return Ok(());
    }
    Err(Error::Other(anyhow::anyhow!(refusal(step, &denied))))
}

/// The server's answer to one review.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    Allowed,
    /// Not allowed, with the authorizer's reason if it gave one.
    Denied(String),
}

/// One review, retried as every call of a step is (throttling, server errors, lost
/// connections) within the check's budget.
async fn review(api: &Api<SelfSubjectAccessReview>, need: &Need, deadline: Instant) -> Result<Answer, kube::Error> {
    let body = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(need.attributes()),
            ..SelfSubjectAccessReviewSpec::default()
        },
        ..SelfSubjectAccessReview::default()
    };
    let post = PostParams::default();
    let answer = retry::until(deadline, || api.create(&post, &body))
        .await
        .map_err(|e| match e {
            retry::Error::Failed(e) => e,
            retry::Error::Deadline { last } => last.unwrap_or_else(|| {
                kube::Error::Service(format!("no answer to the review of {need} within {}s", BUDGET.as_secs()).into())
            }),
        })?;
    let status = answer.status.unwrap_or_default();
    if status.allowed {
        return Ok(Answer::Allowed);
    }
    let reason = [status.reason, status.evaluation_error]
        .into_iter()
        .flatten()
        .filter(|r| !r.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    Ok(Answer::Denied(reason))
}

/// What was denied, one line per verb, resource and namespace with the objects concerned,
/// and the roles to ask for.
fn refusal(step: &str, denied: &[(Need, String)]) -> String {
    let mut lines: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    for (need, _) in denied {
        let mut line = format!("cannot {} {}", need.verb, need.resource_ref());
        if let Some(ns) = &need.namespace {
            line.push_str(&format!(" in namespace {ns}"));
        }
        let names = lines.entry(line).or_default();
        names.extend(need.name.as_deref());
    }
    let mut out = format!(
        "not allowed (403 Forbidden): the API server says {} of the requests this needs would be refused; \
         nothing was changed",
        denied.len()
    );
    for (line, names) in &lines {
        out.push_str("\n  ");
        out.push_str(line);
        if !names.is_empty() {
            let names: Vec<&str> = names.iter().copied().collect();
            out.push_str(&format!(" ({})", names.join(", ")));
        }
    }
    out.push_str(&format!(
        "\n  ask a cluster admin for the roles in rbac/{step}.yaml (each rule names the request that needs it)"
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_create_names_no_object_and_a_namespace_is_authorized_in_itself() {
        let create = Need::new("create", "", "services")
            .namespace(Some("istio-system"))
            .name("x");
        assert_eq!(create.name, None);
        assert_eq!(create.attributes().namespace.as_deref(), Some("istio-system"));
        let patch = Need::new("patch", "", "namespaces").name("default");
        let a = patch.attributes();
        assert_eq!(
            (a.namespace.as_deref(), a.name.as_deref(), a.group.as_deref()),
            (Some("default"), Some("default"), Some(""))
        );
        let webhook = Need::new(
            "delete",
            "admissionregistration.k8s.io",
            "mutatingwebhookconfigurations",
        )
        .name("x");
        assert_eq!(webhook.attributes().namespace, None);
    }

    #[test]
    fn the_refusal_names_each_verb_resource_and_namespace_once() {
        let deployments = |verb, name: &str| {
            Need::new(verb, "apps", "deployments")
                .namespace(Some("default"))
                .name(name)
        };
        let denied = vec![
            (deployments("patch", "webapp"), String::new()),
            (deployments("patch", "api-gateway"), String::new()),
            (deployments("watch", "webapp"), String::new()),
            (
                Need::new("list", "", "services").namespace(Some("istio-system")),
                String::new(),
            ),
        ];
        let text = refusal("roll", &denied);
        assert!(text.starts_with("not allowed (403 Forbidden)"), "{text}");
        assert!(
            text.contains("\n  cannot patch deployments.apps in namespace default (api-gateway, webapp)\n"),
            "{text}"
        );
        assert!(
            text.contains("\n  cannot watch deployments.apps in namespace default (webapp)\n"),
            "{text}"
        );
        assert!(
            text.contains("\n  cannot list services in namespace istio-system\n"),
            "{text}"
        );
        assert!(
            text.ends_with("rbac/roll.yaml (each rule names the request that needs it)"),
            "{text}"
        );
        assert_eq!(
            deployments("get", "webapp").to_string(),
            "get deployments.apps webapp in namespace default"
        );
    }
}
