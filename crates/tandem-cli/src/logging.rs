//! Where the libraries' `tracing` events go: standard error (the mount's log when it runs
//! in the background), one line each: `tandem: `, then `warning: ` or `error: ` where it is
//! one, then the message, as the CLI's own lines read. `TANDEM_LOG=debug` (or `warn`,
//! `trace`...) sets how much; the default is `info`.

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

struct Line;

impl<S, N> FormatEvent<S, N> for Line
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        write!(w, "tandem: ")?;
        match *event.metadata().level() {
            Level::ERROR => write!(w, "error: ")?,
            Level::WARN => write!(w, "warning: ")?,
            _ => {}
        }
        ctx.field_format().format_fields(w.by_ref(), event)?;
        writeln!(w)
    }
}

pub fn init() {
    let level = std::env::var("TANDEM_LOG")
        .ok()
        .and_then(|v| v.parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::INFO);
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .event_format(Line)
        .try_init();
}
