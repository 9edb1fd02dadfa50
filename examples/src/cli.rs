//! What every binary's `main` does: its runtime, logging, paths, shell completions.

use std::path::{Path, PathBuf};

/// Runs an async `main` on a multi-threaded runtime, with malloc arenas capped before any
/// thread exists ([`market_core::process::limit_malloc_arenas`]).
pub fn run<F: std::future::Future>(main: F) -> F::Output {
    market_core::process::limit_malloc_arenas();
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(main),
        Err(e) => panic!("cannot start the tokio runtime: {e}"),
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
#[non_exhaustive]
pub enum LogFormat {
    /// Human-readable lines (coloured on a terminal).
    #[default]
    Text,
    /// One JSON object per line (timestamp, level, target, fields with the deal ids and
    /// pieces they name), for log collectors.
    Json,
}

/// The logging flag every binary takes.
#[derive(Debug, Clone, clap::Args)]
pub struct LogArgs {
    /// Log lines as text or as JSON objects.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// Logs to stderr in `format`, filtered by `RUST_LOG` or else `default` (such as `"warn"`).
pub fn init_tracing(default: &str, format: LogFormat) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default.into());
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => fmt.json().init(),
        // Colours for a terminal only: a log file or journal gets plain text.
        LogFormat::Text => fmt
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
}

/// `p` with a leading `~/` replaced by `$HOME`.
pub fn expand_home(p: &str) -> PathBuf {
    match (p.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => Path::new(&home).join(rest),
        _ => PathBuf::from(p),
    }
}

/// Writes `shell`'s completion script for the command `C` (binary `name`) to stdout, e.g.
/// `provider completions bash > /etc/bash_completion.d/provider`.
pub fn print_completions<C: clap::CommandFactory>(shell: clap_complete::Shell, name: &str) {
    // Into a buffer first: the generator panics on a closed pipe (`| head`), a write here
    // just stops.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut C::command(), name, &mut script);
    let _ = std::io::Write::write_all(&mut std::io::stdout(), &script);
}
