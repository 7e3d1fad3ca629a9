//! Splitting a parameter such as `start_command="/opt/app/bin/run --port 8080"` into an
//! argument vector, with the quoting rules of a shell word list and nothing else: no variables,
//! no globbing, no redirection, no `;` or `|`. A command that needs a shell says so itself
//! (`sh -c '...'`).
//!
//! Rules:
//! - words are separated by spaces, tabs or newlines;
//! - `'...'` keeps everything inside literally;
//! - `"..."` keeps everything inside, except that `\"` and `\\` stand for `"` and `\`;
//! - outside quotes, `\` makes the next character literal;
//! - `''` or `""` is an empty word.

/// The rules above as every parameter split by [`split`] states them in its meta-data
/// (`concat!` it into the long description).
#[macro_export]
macro_rules! word_rules {
    () => {
        "Split into words as a shell splits a word list, and nothing more: '...' keeps its text \
         literally; \"...\" too, except that \\\" and \\\\ stand for \" and \\; outside quotes \\ makes \
         the next character literal; '' is an empty word. No variables, globbing, redirection, \
         ';' or '|', and no shell runs."
    };
}

/// The words of `text`, or an error naming the problem (unterminated quote, trailing `\`).
pub fn split(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    // A word has started (even if empty, as with `''`).
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("unterminated single quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err("unterminated double quote".into()),
                        },
                        Some(c) => word.push(c),
                        None => return Err("unterminated double quote".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                word.push(chars.next().ok_or("a trailing '\\' escapes nothing")?);
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::split;

    fn ok(text: &str) -> Vec<String> {
        split(text).unwrap()
    }

    #[test]
    fn splits_words_and_quotes() {
        assert_eq!(ok("  /bin/run  --port 8080 "), ["/bin/run", "--port", "8080"]);
        assert_eq!(ok("sh -c 'echo $HOME; exit 3'"), ["sh", "-c", "echo $HOME; exit 3"]);
        assert_eq!(ok(r#"a "b \"c\" \\ \n" d"#), ["a", r#"b "c" \ \n"#, "d"]);
        assert_eq!(ok(r"a\ b c\'d"), ["a b", "c'd"]);
        assert_eq!(ok("x '' \"\""), ["x", "", ""]);
        assert_eq!(ok("pre'fix'\"ed\""), ["prefixed"]);
        assert!(ok("   ").is_empty());
    }

    #[test]
    fn nothing_is_expanded() {
        assert_eq!(ok("echo $PATH * ; rm"), ["echo", "$PATH", "*", ";", "rm"]);
    }

    #[test]
    fn reports_bad_quoting() {
        assert!(split("a 'b").unwrap_err().contains("single quote"));
        assert!(split("a \"b").unwrap_err().contains("double quote"));
        assert!(split("a \\").unwrap_err().contains("trailing"));
    }
}
