//! kubectl's `-v=N` for a step, on stderr in klog's format. From 6, each API request's
//! method, URL, status and time, one line per request as client-go's
//! `transport/round_trippers.go` prints them (`GET https://… 200 OK in 6 milliseconds`),
//! and each kubeconfig file read (client-go's `tools/clientcmd/loader.go`). From 8, kube's
//! own debug events (`kube_client`, `kube_runtime`), and from 9 its trace events.
//!
//! The request lines come from the span kube opens around every request (target
//! `kube_client::client::builder`, name `HTTP`, fields `http.method`, `http.url`,
//! `http.status_code`): they carry no header, so no token reaches the log. Client keys and
//! tokens live in kube's `SecretString`s, whose `Debug` is redacted.

use std::fmt::Debug;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Instant;

use tracing::Subscriber;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::filter::{LevelFilter, Targets, filter_fn};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

/// From this level on, kubectl logs every request and the kubeconfig files it loads.
pub(crate) const REQUESTS: u8 = 6;
/// From this level on, kube's debug events too (kubectl shows bodies from 8).
const KUBE_DEBUG: u8 = 8;
/// From this level on, kube's trace events too.
const KUBE_TRACE: u8 = 9;

static LEVEL: AtomicU8 = AtomicU8::new(0);

/// Start logging at `level` (kubectl's `-v`). Below 6 nothing is installed, so tracing costs
/// nothing.
pub(crate) fn init(level: u8) {
    LEVEL.store(level, Ordering::Relaxed);
    if level < REQUESTS {
        return;
    }
    let requests = Requests.with_filter(filter_fn(|m| {
        m.is_span() && m.name() == "HTTP" && m.target().starts_with("kube_client")
    }));
    let kube_events = (level >= KUBE_DEBUG).then(|| {
        let at = if level >= KUBE_TRACE {
            LevelFilter::TRACE
        } else {
            LevelFilter::DEBUG
        };
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_filter(
                Targets::new()
                    .with_target("kube_client", at)
                    .with_target("kube_runtime", at),
            )
    });
    // A second connection in the same process keeps the first subscriber: the error says
    // only that one is installed already.
    let _ = tracing_subscriber::registry()
        .with(requests)
        .with(kube_events)
        .try_init();
}

/// `message` on stderr, in klog's format, when `-v` is at least `level`.
pub(crate) fn log(level: u8, message: &str) {
    if LEVEL.load(Ordering::Relaxed) >= level {
        eprintln!("{}", klog(message));
    }
}

/// klog's header (`I1127 10:06:08.399565   24894 file] `), then `message`.
fn klog(message: &str) -> String {
    let now = jiff::Zoned::now();
    format!(
        "I{} {:>7} connect.rs] {message}",
        now.strftime("%m%d %H:%M:%S%.6f"),
        std::process::id()
    )
}

/// Logs each request kube sends, once its status is known (or, if it never got one, when
/// it ends).
struct Requests;

/// What is known of one request, kept in its span.
struct Request {
    method: String,
    url: String,
    start: Instant,
    logged: bool,
}

impl Request {
    /// `GET https://… 200 OK in 6 milliseconds`; no status when the request failed.
    fn line(&self, status: Option<u16>) -> String {
        let status = status
            .map(
                |code| match http::StatusCode::from_u16(code).ok().and_then(|s| s.canonical_reason()) {
                    Some(reason) => format!("{code} {reason}"),
                    None => code.to_string(),
                },
            )
            .unwrap_or_default();
        format!(
            "{} {} {status} in {} milliseconds",
            self.method,
            self.url,
            self.start.elapsed().as_millis()
        )
    }
}

impl<S> Layer<S> for Requests
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(Request {
                method: fields.method,
                url: fields.url,
                start: Instant::now(),
                logged: false,
            });
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        values.record(&mut fields);
        let (Some(status), Some(span)) = (fields.status, ctx.span(id)) else {
            return;
        };
        if let Some(request) = span.extensions_mut().get_mut::<Request>()
            && !request.logged
        {
            request.logged = true;
            log(REQUESTS, &request.line(Some(status)));
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(&id)
            && let Some(request) = span.extensions().get::<Request>()
            && !request.logged
        {
            log(REQUESTS, &request.line(None));
        }
    }
}

/// The fields of kube's request span.
#[derive(Default)]
struct Fields {
    method: String,
    url: String,
    status: Option<u16>,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        match field.name() {
            "http.method" => self.method = format!("{value:?}"),
            "http.url" => self.url = format!("{value:?}"),
            _ => {}
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "http.status_code" {
            self.status = u16::try_from(value).ok();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines_read_like_kubectl() {
        let request = Request {
            method: "GET".into(),
            url: "https://127.0.0.1:6443/api/v1/namespaces?limit=500".into(),
            start: Instant::now(),
            logged: false,
        };
        let line = request.line(Some(200));
        assert!(
            line.starts_with("GET https://127.0.0.1:6443/api/v1/namespaces?limit=500 200 OK in "),
            "{line}"
        );
        assert!(line.ends_with(" milliseconds"), "{line}");
        assert!(request.line(Some(403)).contains(" 403 Forbidden in "));
        assert!(request.line(None).contains("limit=500  in "));
    }

    #[test]
    fn klog_header_has_date_time_and_pid() {
        let line = klog("hello");
        let pid = std::process::id().to_string();
        assert!(line.starts_with('I'), "{line}");
        // I1127 10:06:08.399565   24894 connect.rs] hello
        assert_eq!(line.find(' '), Some(5), "{line}");
        assert_eq!(&line[14..15], ".", "{line}");
        assert!(line.contains(&format!(" {pid} connect.rs] hello")), "{line}");
    }
}
