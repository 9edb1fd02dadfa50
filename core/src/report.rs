//! Error text for people: an error and the chain of its sources.

/// `error: cause: cause…`, for logs, CLI output and API error messages, where one line
/// should say everything the error's sources know.
pub fn report(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let next = e.to_string();
        // Transparent wrappers repeat their source's text; say it once.
        if !text.ends_with(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = e.source();
    }
    text
}

/// Longest piece of outside input quoted back in an error message.
pub const MAX_ECHO: usize = 96;

/// `text` (something a peer or a caller sent) as it may be quoted back in an error: at
/// most [`MAX_ECHO`] characters, the rest counted, so a 10 KB CID is not echoed whole.
pub fn clip(text: &str) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(MAX_ECHO) {
        None => std::borrow::Cow::Borrowed(text),
        Some((end, _)) => {
            std::borrow::Cow::Owned(format!("{}… ({} bytes)", &text[..end], text.len()))
        }
    }
}

#[cfg(test)]
mod tests {
    #[derive(Debug, thiserror::Error)]
    #[error("cannot start the wallet")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn report_names_every_cause() {
        let e = Outer(std::io::Error::other("disk full"));
        assert_eq!(super::report(&e), "cannot start the wallet: disk full");
    }
}
