//! Captures `tracing` events written inside an asset (`tracing::info!` as well as
//! `ctx.log().info`) into that asset's log, so they land with its events.
//!
//! The executor wraps each attempt in an `asset` span and stores the attempt's
//! [`AssetContext`] in the span's extensions; [`CaptureLayer`] finds it from any event inside.

use std::fmt::Write as _;

use orch_core::{AssetContext, LogLevel};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

struct Capture(AssetContext);

/// The span one attempt of an asset runs in.
pub(crate) fn asset_span(ctx: &AssetContext) -> tracing::Span {
    let span = tracing::info_span!(target: "orch::asset", "asset", key = %ctx.asset_key());
    span.with_subscriber(|(id, dispatch)| {
        if let Some(span) = dispatch
            .downcast_ref::<tracing_subscriber::Registry>()
            .and_then(|registry| registry.span(id))
        {
            span.extensions_mut().insert(Capture(ctx.clone()));
        }
    });
    span
}

/// A `tracing` layer that copies events inside an asset's span into the asset's log.
/// [`crate::main`] installs it; install it yourself if you set up your own subscriber.
#[derive(Debug, Default)]
pub struct CaptureLayer;

impl<S> Layer<S> for CaptureLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_event(&self, event: &Event<'_>, cx: Context<'_, S>) {
        if event.metadata().target() == orch_core::context::LOG_TARGET {
            return; // written through `ctx.log()`, which captures it itself
        }
        let Some(scope) = cx.event_scope(event) else {
            return;
        };
        for span in scope {
            let extensions = span.extensions();
            let Some(Capture(ctx)) = extensions.get::<Capture>() else {
                continue;
            };
            let mut visitor = Text::default();
            event.record(&mut visitor);
            {
                let level = match *event.metadata().level() {
                    Level::ERROR => LogLevel::Error,
                    Level::WARN => LogLevel::Warn,
                    Level::INFO => LogLevel::Info,
                    _ => LogLevel::Debug,
                };
                ctx.capture_log(level, visitor.text);
            }
            return;
        }
    }
}

#[derive(Default)]
struct Text {
    text: String,
}

impl Visit for Text {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.text.insert_str(0, value);
        } else {
            let _ = write!(self.text, " {}={value}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.text.insert_str(0, &format!("{value:?}"));
        } else {
            let _ = write!(self.text, " {}={value:?}", field.name());
        }
    }
}
