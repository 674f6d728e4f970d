//! Error messages in the status line. For a 5xx, docker, podman and skopeo
//! show only the status line, and pip shows the reason phrase of any error:
//! a reason phrase that says what went wrong is the message those users see.

/// The message as a status-line reason: one line of visible ASCII, cut at a
/// length every client reads (Go and Python accept lines of 64 KiB and more).
pub(crate) fn reason(message: &str) -> Option<hyper::ext::ReasonPhrase> {
    let line: String = message
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                ' '
            }
        })
        .take(1024)
        .collect();
    hyper::ext::ReasonPhrase::try_from(line.trim().as_bytes().to_vec()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_of_visible_ascii() {
        let r = reason("the upstream\r\nx.io refused: é").unwrap();
        assert_eq!(r.as_bytes(), b"the upstream  x.io refused:");
        assert_eq!(reason(&"a".repeat(5000)).unwrap().as_bytes().len(), 1024);
    }
}
