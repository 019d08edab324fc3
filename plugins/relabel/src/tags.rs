//! `relabel --tag <tag> --to <revision>`: move a revision tag as `istioctl tag set
//! --overwrite` does, and `--undo` it.

use k8s_openapi::api::admissionregistration::v1::{MutatingWebhookConfiguration, ValidatingWebhookConfiguration};
use k8s_openapi::api::core::v1::{Namespace, Service};
use kube::api::{Api, ListParams, PostParams};
use serde::{Deserialize, Serialize};
use shared::model::labels;
use shared::{Connection, collect, error::api_error, exit, tag};

use crate::plan::{self, NamespaceState, PREVIOUS};
use crate::{Args, DryRun, dry_run_suffix};

/// What the tag's [`PREVIOUS`] annotation remembers.
#[derive(Debug, Serialize, Deserialize)]
struct RememberedTag {
    revision: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Written {
    kind: &'static str,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<String>,
    /// replaced | created | failed
    action: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Moving {
    namespace: String,
    via: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Document {
    schema_version: u32,
    dry_run: &'static str,
    tag: String,
    from: Option<String>,
    to: String,
    /// moved | unchanged
    result: &'static str,
    objects: Vec<Written>,
    namespaces: Vec<Moving>,
}

pub async fn run(args: &Args, conn: &Connection, tag_name: &str) -> shared::Result<u8> {
    let cp = collect::read_control_plane(conn).await?;
    let mwc_api = Api::<MutatingWebhookConfiguration>::all(conn.client.clone());
    let webhooks = mwc_api
        .list(&ListParams::default())
        .await
        .map_err(|e| api_error(e, &conn.url, "list mutatingwebhookconfigurations"))?
        .items;
    let existing = webhooks.iter().find(|w| {
        w.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(labels::TAG))
            .map(String::as_str)
            == Some(tag_name)
    });
    let current = existing.and_then(tag::tag_revision).map(String::from);

    let target = if args.undo {
        let Some(e) = existing else {
            return Err(shared::Error::Refused(format!(
                "revision tag {tag_name} does not exist; nothing to undo"
            )));
        };
        let remembered = e.metadata.annotations.as_ref().and_then(|a| a.get(PREVIOUS));
        match remembered.map(|t| serde_json::from_str::<RememberedTag>(t)) {
            Some(Ok(r)) => r.revision,
            Some(Err(err)) => {
                return Err(shared::Error::Refused(format!(
                    "the {PREVIOUS} annotation of {} cannot be read ({err}); fix or remove it by hand",
                    e.metadata.name.as_deref().unwrap_or("?")
                )));
            }
            None => {
                println!("revision tag {tag_name} has no {PREVIOUS} annotation: nothing to undo");
                return Ok(exit::OK);
            }
        }
    } else {
        args.to.clone().expect("clap requires --to without --undo")
    };

    // Pre-flight, as istioctl: the tag may not shadow a revision, and must point at a
    // revision (not another tag) whose injector configuration exists.
    if tag_name != labels::DEFAULT_TAG && cp.revisions.contains_key(tag_name) {
        return Err(shared::Error::Refused(format!(
            "a control-plane revision is named {tag_name}; a tag cannot have the same name"
        )));
    }
    if let Some(t) = cp.tags.get(&target) {
        return Err(shared::Error::Refused(format!(
            "{target} is a tag (pointing to revision {}); a tag points to a revision: use --to {}",
            t.revision, t.revision
        )));
    }
    if let Err(problem) = plan::check_target(&target, &cp, args.force) {
        return Err(shared::Error::Refused(format!(
            "refusing to move tag {tag_name} to {target}: {problem}"
        )));
    }
    let injector = tag::revision_injector(&webhooks, &target)
        .map_err(|e| shared::Error::Refused(format!("refusing to move tag {tag_name} to {target}: {e}")))?;

    let ns_api = Api::<Namespace>::all(conn.client.clone());
    let states: Vec<NamespaceState> = ns_api
        .list(&ListParams::default())
        .await
        .map_err(|e| api_error(e, &conn.url, "list namespaces"))?
        .items
        .iter()
        .map(NamespaceState::from_namespace)
        .collect();
    let namespaces: Vec<Moving> = plan::namespaces_following(tag_name, &states, &cp)
        .into_iter()
        .map(|(namespace, via)| Moving { namespace, via })
        .collect();

    let unchanged = current.as_deref() == Some(target.as_str()) && !args.undo;
    let mut objects = vec![];
    if !unchanged {
        let mut mwc = tag::tag_webhook_configuration(tag_name, &target, injector, existing)
            .map_err(|e| shared::Error::Refused(format!("refusing to move tag {tag_name}: {e}")))?;
        let annotations = mwc.metadata.annotations.get_or_insert_with(Default::default);
        match (&current, args.undo) {
            (Some(from), false) => {
                let text = serde_json::to_string(&RememberedTag { revision: from.clone() }).expect("serialises");
                annotations.insert(PREVIOUS.to_string(), text);
            }
            _ => {
                annotations.remove(PREVIOUS);
            }
        }
        let pp = PostParams {
            dry_run: args.dry_run == DryRun::Server,
            ..PostParams::default()
        };
        let send = args.dry_run != DryRun::Client;
        let name = mwc.metadata.name.clone().unwrap_or_default();
        // The webhook first: it is what decides injection; a failure here changes nothing.
        if send {
            let res = match existing {
                Some(_) => mwc_api.replace(&name, &pp, &mwc).await,
                None => mwc_api.create(&pp, &mwc).await,
            };
            res.map_err(|e| api_error(e, &conn.url, format!("write mutatingwebhookconfiguration {name}")))?;
        }
        objects.push(Written {
            kind: "MutatingWebhookConfiguration",
            name,
            namespace: None,
            action: if existing.is_some() { "replaced" } else { "created" },
            error: None,
        });

        let istio_ns = tag::istio_namespace(injector);
        let svc_api = Api::<Service>::namespaced(conn.client.clone(), &istio_ns);
        let svc_name = tag::service_name(tag_name);
        match svc_api.get_opt(&svc_name).await {
            Ok(Some(svc)) => {
                let new = tag::tag_service(&svc, &target);
                objects.push(written(
                    "Service",
                    &svc_name,
                    Some(&istio_ns),
                    if send {
                        svc_api.replace(&svc_name, &pp, &new).await.err()
                    } else {
                        None
                    },
                    conn,
                ));
            }
            Ok(None) => {}
            Err(e) => objects.push(written("Service", &svc_name, Some(&istio_ns), Some(e), conn)),
        }

        if tag_name == labels::DEFAULT_TAG {
            let vwc_api = Api::<ValidatingWebhookConfiguration>::all(conn.client.clone());
            match vwc_api.get_opt(tag::DEFAULT_VALIDATOR).await {
                Ok(Some(vwc)) => {
                    let result = match tag::default_validator(&vwc, &target, injector) {
                        Ok(new) if send => vwc_api.replace(tag::DEFAULT_VALIDATOR, &pp, &new).await.err(),
                        Ok(_) => None,
                        Err(e) => Some(kube::Error::Service(e.into())),
                    };
                    objects.push(written(
                        "ValidatingWebhookConfiguration",
                        tag::DEFAULT_VALIDATOR,
                        None,
                        result,
                        conn,
                    ));
                }
                Ok(None) => {}
                Err(e) => objects.push(written(
                    "ValidatingWebhookConfiguration",
                    tag::DEFAULT_VALIDATOR,
                    None,
                    Some(e),
                    conn,
                )),
            }
        }
    }

    let failed = objects.iter().any(|o| o.action == "failed");
    if args.output.machine() {
        shared::output::print_document(
            args.output.format,
            &Document {
                schema_version: shared::output::SCHEMA_VERSION,
                dry_run: match args.dry_run {
                    DryRun::None => "none",
                    DryRun::Client => "client",
                    DryRun::Server => "server",
                },
                tag: tag_name.to_string(),
                from: current.clone(),
                to: target.clone(),
                result: if unchanged { "unchanged" } else { "moved" },
                objects,
                namespaces,
            },
        )?;
    } else {
        let paint = args.output.paint();
        let suffix = dry_run_suffix(args.dry_run);
        if unchanged {
            println!("revision tag {tag_name} unchanged: already points to revision {target}");
        } else {
            println!(
                "revision tag {tag_name} moved{suffix}: {} → {}",
                current.as_deref().unwrap_or("(new)"),
                paint.good(&target)
            );
            for o in &objects {
                let ns = o.namespace.as_deref().map(|n| format!(" -n {n}")).unwrap_or_default();
                match &o.error {
                    None => println!("  {}/{}{ns} {}{suffix}", o.kind.to_lowercase(), o.name, o.action),
                    Some(e) => println!(
                        "  {}/{}{ns} {}: {e}",
                        o.kind.to_lowercase(),
                        o.name,
                        paint.bad("failed")
                    ),
                }
            }
        }
        if namespaces.is_empty() {
            println!("No namespace follows tag {tag_name}.");
        } else {
            println!(
                "Namespaces that {} with it: {}",
                if unchanged { "follow it" } else { "move" },
                namespaces
                    .iter()
                    .map(|m| format!("{} ({})", m.namespace, m.via))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            if !unchanged {
                println!(
                    "{}",
                    paint.dim("Running pods keep their proxy until restarted; next: kubectl mesh roll")
                );
            }
        }
    }
    Ok(if failed { exit::PARTIAL } else { exit::OK })
}

fn written(
    kind: &'static str,
    name: &str,
    namespace: Option<&str>,
    err: Option<kube::Error>,
    conn: &Connection,
) -> Written {
    Written {
        kind,
        name: name.to_string(),
        namespace: namespace.map(String::from),
        action: if err.is_some() { "failed" } else { "replaced" },
        error: err.map(|e| api_error(e, &conn.url, format!("write {} {name}", kind.to_lowercase())).to_string()),
    }
}
