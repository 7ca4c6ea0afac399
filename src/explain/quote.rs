//! Shell words and comments: every value from a topology reaches the script
//! through here, so none can break out of its word or its comment line.

use std::borrow::Cow;

/// `s` as one POSIX shell word: as it is when every character is plainly
/// safe, else in single quotes (a `'` inside becomes `'\''`).
pub(super) fn quote(s: &str) -> Cow<'_, str> {
    let safe = |c: char| c.is_ascii_alphanumeric() || "_-./:,+=@%".contains(c);
    // A leading `=` or `-` is fine for the shell; `~` and `#` are not safe
    // at the start of a word and are quoted because they are not in the set.
    if !s.is_empty() && s.chars().all(safe) {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(format!("'{}'", s.replace('\'', r"'\''")))
    }
}

/// `s` fit for a `#` comment: control characters (a newline above all,
/// which would end the comment) are written as escapes.
pub(super) fn comment(s: &str) -> Cow<'_, str> {
    if s.chars().any(char::is_control) {
        Cow::Owned(
            s.chars()
                .map(|c| match c.is_control() {
                    true => c.escape_default().to_string(),
                    false => c.to_string(),
                })
                .collect(),
        )
    } else {
        Cow::Borrowed(s)
    }
}

/// A here-document delimiter that no line of `body` equals, so a quoted
/// value spanning lines can never end the document early.
pub(super) fn delimiter(body: &str) -> String {
    let mut word = "EOF".to_string();
    let mut n = 0;
    while body.lines().any(|line| line == word) {
        n += 1;
        word = format!("EOF{n}");
    }
    word
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_words_stay_plain() {
        for word in ["eth0", "10.0.1.2/24", "2001:db8::1/64", "/etc/hosts", "a=b"] {
            assert_eq!(quote(word), word);
        }
    }

    #[test]
    fn odd_words_are_single_quoted() {
        assert_eq!(quote(""), "''");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("$HOME"), "'$HOME'");
        assert_eq!(quote("`id`"), "'`id`'");
        assert_eq!(quote("~root"), "'~root'");
        assert_eq!(quote("#x"), "'#x'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote("a\nb"), "'a\nb'");
        assert_eq!(quote("x;rm -rf /"), "'x;rm -rf /'");
    }

    #[test]
    fn quoted_words_read_back_through_a_real_shell() {
        let words = ["plain", "a b", "it's", "$(id)", "\\n", "a\nb", "'", "\"q\""];
        let script: Vec<String> = words
            .iter()
            .map(|w| format!("printf '%s\\0' {}", quote(w)))
            .collect();
        let out = std::process::Command::new("/bin/sh")
            .args(["-c", &script.join("\n")])
            .output()
            .expect("run /bin/sh");
        let back: Vec<String> = out
            .stdout
            .split(|b| *b == 0)
            .filter(|w| !w.is_empty())
            .map(|w| String::from_utf8_lossy(w).into_owned())
            .collect();
        assert_eq!(back, words);
    }

    #[test]
    fn comments_never_span_lines() {
        assert_eq!(comment("echo hi"), "echo hi");
        assert_eq!(comment("a\nb\tc"), "a\\nb\\tc");
        assert!(!comment("x\r\ny").contains(['\n', '\r']));
    }

    #[test]
    fn delimiters_avoid_the_body() {
        assert_eq!(delimiter("mount x\n"), "EOF");
        assert_eq!(delimiter("a 'x\nEOF\n'"), "EOF1");
        assert_eq!(delimiter("EOF\nEOF1\n"), "EOF2");
        // Only a whole line counts.
        assert_eq!(delimiter("echo EOF\n"), "EOF");
    }
}
