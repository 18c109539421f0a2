//! The web UI: `dev` (with the daemon in the same process) and `ui` (the UI alone) serve it
//! on `127.0.0.1:3000`. Pages are rendered on the server (maud) with one small embedded
//! script; every page's data is also JSON under `/api/...`. It is a view of the
//! [`Instance`] and its store, like the command line: reading goes through `data.rs`,
//! launching runs through [`Instance::enqueue`] (the daemon starts them) or
//! [`Instance::launch_queued`] (without a daemon), canceling through the store.
//!
//! Security: loopback by default; on another address a token is required (`ORCH_UI_TOKEN`,
//! as a bearer header or the cookie `/login?token=` sets). Every mutating endpoint is a POST
//! that checks `Host`, `Origin` and a CSRF token (see `guard.rs`).

mod api;
mod data;
mod graph;
mod guard;
mod local;
mod pages;
mod stream;

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use orch_core::AssetGraph;
use tokio_util::sync::CancellationToken;

use crate::automation::Automation;
use crate::instance::Instance;
use crate::storage::StorageError;

pub use graph::{GraphLayout, layout_graph, layout_of};

/// The default port.
pub const DEFAULT_PORT: u16 = 3000;

/// How runs launched from the UI start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebMode {
    /// A daemon runs in this process (`dev`): runs are queued and it starts them at once,
    /// within the queue's limits. Schedules, sensors and pause can be toggled.
    Dev,
    /// The UI alone (`ui`): runs are queued and started in this process. Schedules and
    /// sensors are shown read-only (a daemon elsewhere owns them).
    UiOnly,
}

/// Where and how the UI serves.
#[derive(Clone, Debug)]
pub struct WebOptions {
    /// The address to bind (default loopback).
    pub host: IpAddr,
    /// The port (default 3000; 0 picks a free one).
    pub port: u16,
    /// The token every request must carry (required on a non-loopback address).
    pub token: Option<String>,
    /// Dev (with a daemon) or the UI alone.
    pub mode: WebMode,
}

impl Default for WebOptions {
    fn default() -> Self {
        WebOptions {
            host: IpAddr::from([127, 0, 0, 1]),
            port: DEFAULT_PORT,
            token: None,
            mode: WebMode::Dev,
        }
    }
}

/// Why the UI cannot start or a request failed.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// The store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Binding the address failed.
    #[error(
        "cannot listen on {addr}: {source}; is another `dev` or `ui` running there? Pick another port with `--port`"
    )]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A non-loopback address without a token.
    #[error(
        "serving on {0} (not loopback) lets anyone on the network launch runs: set ORCH_UI_TOKEN to a secret first"
    )]
    TokenRequired(IpAddr),
    /// The token cannot be used.
    #[error("{0}")]
    BadToken(String),
    /// Serving failed.
    #[error("the web server stopped: {0}")]
    Serve(std::io::Error),
    /// A request named something that does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// A request that cannot be honoured as sent (400).
    #[error("{0}")]
    BadRequest(String),
    /// A request body over the limit (413).
    #[error("{0}")]
    TooLarge(String),
    /// A request that conflicts with the state (409), e.g. canceling an ended run.
    #[error("{0}")]
    Conflict(String),
    /// A request the UI does not allow in this mode (403).
    #[error("{0}")]
    Forbidden(String),
}

impl WebError {
    fn status(&self) -> StatusCode {
        match self {
            WebError::NotFound(_) | WebError::Storage(StorageError::NoSuchRun(_)) => {
                StatusCode::NOT_FOUND
            }
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            WebError::Conflict(_) | WebError::Storage(StorageError::AssetBusy { .. }) => {
                StatusCode::CONFLICT
            }
            WebError::Forbidden(_) => StatusCode::FORBIDDEN,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!("web UI: {self}");
        }
        (
            status,
            axum::Json(serde_json::json!({ "error": self.to_string() })),
        )
            .into_response()
    }
}

/// See [`Ui::summaries`].
pub(crate) type SummaryCache = (u64, std::time::Instant, Arc<Vec<data::AssetSummary>>);

/// What every handler reads: the instance, its definitions, and the server's secrets.
pub(crate) struct Ui {
    pub(crate) instance: Instance,
    pub(crate) graph: &'static AssetGraph,
    pub(crate) automation: &'static Automation,
    pub(crate) mode: WebMode,
    /// The CSRF token pages embed and mutating requests send back.
    pub(crate) csrf: String,
    /// The access token, if one is required.
    pub(crate) token: Option<String>,
    /// `Host` values the server answers to (loopback: its own address only).
    pub(crate) hosts: Option<Vec<String>>,
    /// The lineage graph's layout, computed once.
    pub(crate) layout: OnceLock<Arc<GraphLayout>>,
    /// Its SVG, rendered once: all open, and with every group collapsed (members on demand).
    pub(crate) svg: [OnceLock<Arc<String>>; 2],
    /// The assets' summaries, with the store's latest event and when they were computed.
    pub(crate) summaries: std::sync::Mutex<Option<SummaryCache>>,
    /// Runs this process starts itself (`ui`: no daemon).
    pub(crate) local: Arc<local::LocalRuns>,
    /// Cancelled when the server stops: open event streams end.
    pub(crate) stop: CancellationToken,
}

impl Ui {
    pub(crate) fn layout(&self) -> Arc<GraphLayout> {
        Arc::clone(
            self.layout
                .get_or_init(|| Arc::new(layout_graph(self.graph))),
        )
    }
}

/// Runs `f` with the UI state on the blocking pool (the store is synchronous).
pub(crate) async fn blocking<T, F>(ui: &Arc<Ui>, f: F) -> Result<T, WebError>
where
    T: Send + 'static,
    F: FnOnce(&Ui) -> Result<T, WebError> + Send + 'static,
{
    let ui = Arc::clone(ui);
    tokio::task::spawn_blocking(move || f(&ui))
        .await
        .map_err(|e| WebError::Serve(std::io::Error::other(e.to_string())))?
}

/// A bound web server, ready to serve.
pub struct WebServer {
    listener: tokio::net::TcpListener,
    router: Router,
    addr: SocketAddr,
    ui: Arc<Ui>,
}

impl std::fmt::Debug for WebServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl WebServer {
    /// Binds the address: a non-loopback one needs a token. Must be called within a tokio
    /// runtime.
    pub async fn bind(
        instance: Instance,
        graph: &'static AssetGraph,
        automation: &'static Automation,
        options: WebOptions,
    ) -> Result<WebServer, WebError> {
        let loopback = options.host.is_loopback();
        if !loopback && options.token.is_none() {
            return Err(WebError::TokenRequired(options.host));
        }
        if let Some(token) = &options.token {
            guard::check_token(token).map_err(WebError::BadToken)?;
        }
        let addr = SocketAddr::new(options.host, options.port);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| WebError::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| WebError::Bind { addr, source })?;
        let hosts = loopback.then(|| {
            let port = addr.port();
            vec![
                format!("127.0.0.1:{port}"),
                format!("localhost:{port}"),
                format!("[::1]:{port}"),
                addr.to_string(),
            ]
        });
        let instance_limit = instance.config().queue_limits().max_concurrent_runs;
        let csrf = guard::random_token().map_err(|e| {
            WebError::Serve(std::io::Error::other(format!(
                "no random bytes from the operating system for the CSRF token: {e}"
            )))
        })?;
        let ui = Arc::new(Ui {
            instance,
            graph,
            automation,
            mode: options.mode,
            csrf,
            token: options.token,
            hosts,
            layout: OnceLock::new(),
            svg: [OnceLock::new(), OnceLock::new()],
            local: local::LocalRuns::new(instance_limit),
            summaries: std::sync::Mutex::new(None),
            stop: CancellationToken::new(),
        });
        let router = routes(Arc::clone(&ui));
        Ok(WebServer {
            listener,
            router,
            addr,
            ui,
        })
    }

    /// The address it listens on (with the port chosen when asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL to open: `http://127.0.0.1:3000/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Serves until `shutdown` is cancelled; open event streams end with it. The lineage
    /// graph is laid out on the blocking pool meanwhile, so the first requests do not wait.
    pub async fn serve(self, shutdown: CancellationToken) -> Result<(), WebError> {
        let ui = Arc::clone(&self.ui);
        tokio::task::spawn_blocking(move || drop(ui.layout()));
        // Runs whose process died are marked crashed (the daemon does it under `dev`; under
        // `ui` nothing else would, and their pages would wait for them forever).
        let ui = Arc::clone(&self.ui);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = ui.stop.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(5)) => {}
                }
                let store = Arc::clone(ui.instance.storage());
                let _ = tokio::task::spawn_blocking(move || store.recover_crashed()).await;
            }
        });
        let local = Arc::clone(&self.ui.local);
        let streams = self.ui.stop.clone();
        let stop = async move {
            shutdown.cancelled().await;
            streams.cancel();
        };
        let served = axum::serve(self.listener, self.router)
            .with_graceful_shutdown(stop)
            .await
            .map_err(WebError::Serve);
        // The runs this UI started end canceled, not crashed.
        let _ = tokio::task::spawn_blocking(move || local.shutdown(Duration::from_secs(10))).await;
        served
    }
}

fn routes(ui: Arc<Ui>) -> Router {
    use axum::routing::{get, post};
    Router::new()
        .route("/", get(pages::overview))
        .route("/assets", get(pages::assets))
        .route("/assets/{*key}", get(pages::asset))
        .route("/lineage", get(pages::lineage))
        .route("/runs", get(pages::runs))
        .route("/runs/{id}", get(pages::run))
        .route("/jobs", get(pages::jobs))
        .route("/jobs/{name}", get(pages::job))
        .route("/schedules", get(pages::schedules))
        .route("/login", get(guard::login))
        .route("/static/app.js", get(pages::script))
        .route("/static/style.css", get(pages::style))
        .route("/api/session", get(api::session))
        .route("/api/overview", get(api::overview))
        .route("/api/assets", get(api::assets))
        .route("/api/assets/{*key}", get(api::asset))
        .route("/api/graph", get(api::graph))
        .route("/api/graph/groups/{g}", get(api::graph_group))
        .route("/api/runs", get(api::runs))
        .route("/api/runs/{id}", get(api::run))
        .route("/api/runs/{id}/logs", get(api::logs))
        .route("/api/runs/{id}/stream", get(stream::run_stream))
        .route("/api/events", get(stream::all_events))
        .route("/api/jobs", get(api::jobs))
        .route("/api/schedules", get(api::schedules))
        .route("/api/materialize", post(api::materialize))
        .route("/api/backfill", post(api::backfill))
        .route("/api/runs/{id}/cancel", post(api::cancel))
        .route("/api/runs/{id}/reexecute", post(api::reexecute))
        .route("/api/jobs/{name}/launch", post(api::launch_job))
        .route("/api/schedules/{name}/status", post(api::schedule_status))
        .route("/api/schedules/{name}/preview", post(api::preview_tick))
        .route("/api/schedules/{name}/tick", post(api::launch_tick))
        .route("/api/sensors/{name}/status", post(api::sensor_status))
        .route("/api/automation/paused", post(api::set_paused))
        .fallback(pages::not_found)
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&ui),
            guard::check,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024))
        .with_state(ui)
}
