//! Progress bars for long operations.

use indicatif::{ProgressBar, ProgressStyle};

/// A byte-count bar with `msg`; hidden when stderr is not a terminal.
pub fn bytes(msg: &str, total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:>12} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_message(msg.to_string());
    bar
}
