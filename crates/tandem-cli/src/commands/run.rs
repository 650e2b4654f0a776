//! `tandem run NAME`: one run of a task now, each pair synced as `tandem sync` does.

use std::path::Path;

use anyhow::Result;
use tandem_task::{hook_notes, run_task, Config, LiveRun, PlannedPair, RunRequest, TaskReport};

use crate::args::RunArgs;
use crate::commands::sync::default_threads;
use crate::output::{print_summary, sanitize, Printer};

pub fn run(config: &Path, a: RunArgs) -> Result<u8> {
    let cfg = Config::load(config)?;
    let task = cfg.task(&a.name)?;
    let req = RunRequest {
        trigger: a.trigger.clone(),
        dry_run: a.dry_run,
        threads: default_threads(),
        stop: super::stop_on_signals()?,
    };
    let stop = std::sync::Arc::clone(&req.stop);
    let mut report = run_task(task, &req, &mut |pair, live| {
        sync_pair(pair, live, &a, &stop)
    })?;
    for h in hook_notes(&report).filter(|h| !h.ok()) {
        errln!("tandem: {}", sanitize(&h.to_string()));
    }
    if let Some(why) = &report.skipped {
        if !a.json {
            outln!("task {}: {}", report.task, sanitize(why));
        }
    }
    if let Some(e) = report.error.take() {
        return Err(e.into());
    }
    if a.json {
        outln!("{}", report.to_json());
    } else if report.pairs.len() > 1 {
        print_totals(&report);
    }
    Ok(report.exit_code() as u8)
}

/// One pair synced as `tandem sync` does it, and shown as it prints it.
/// The engine's events go to the run's live progress too (`tandem status NAME`).
fn sync_pair(
    pair: &PlannedPair,
    live: &LiveRun,
    a: &RunArgs,
    stop: &std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Result<tandem_engine::Report, String> {
    let spec = &pair.spec;
    if !a.json {
        outln!(
            "{} -> {}",
            sanitize(&spec.src.display().to_string()),
            sanitize(&spec.tgt.display().to_string())
        );
    }
    let printer = Printer::new(a.json, false, a.verbose);
    let on_event = |e: tandem_engine::Event| {
        live.event(&e);
        printer.event(e);
    };
    let result = match &pair.remote {
        Some(connect) => tandem_remote::sync_until(spec, connect, stop, &on_event)
            .map(|(report, stats)| {
                if !a.json {
                    super::sync::print_wire(&stats);
                }
                report
            })
            .map_err(|e| e.to_string()),
        None => tandem_engine::sync_until(spec, stop, &on_event).map_err(|e| e.to_string()),
    };
    printer.finish();
    let result = result.and_then(|r| marked(pair, r));
    match (&result, a.json) {
        (Ok(r), false) => print_summary(r),
        (Err(e), false) => errln!("tandem: error: {}", sanitize(&format!("{e:#}"))),
        _ => {}
    }
    result
}

/// The report, once the pair's markers are written after its first sync; a marker that
/// cannot be written makes the pair's result an error.
fn marked(
    pair: &PlannedPair,
    report: tandem_engine::Report,
) -> Result<tandem_engine::Report, String> {
    pair.mark_synced(&report).map_err(|e| e.to_string())?;
    Ok(report)
}

fn print_totals(r: &TaskReport) {
    let t = r.totals();
    let counts = [
        (t.copied, "copied"),
        (t.deleted, "deleted"),
        (t.renamed, "renamed"),
        (t.conflicts, "conflicts"),
        (t.skipped, "skipped"),
        (t.failed, "failed"),
        (t.pairs_in_error, "pairs in error"),
    ];
    let parts: Vec<String> = counts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
    let state = if r.exit_code() == 0 {
        "in sync"
    } else {
        "done"
    };
    let what = if parts.is_empty() {
        "nothing to do".to_string()
    } else {
        parts.join(", ")
    };
    outln!("task {}: {} pairs {state}: {what}", r.task, r.pairs.len());
}
