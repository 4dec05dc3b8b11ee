//! Quoting values for each shell, so any byte sequence (newlines, quotes, `$`) survives.

/// A single-quoted word for bash and zsh: `'` becomes `'\''`.
pub fn posix(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// A single-quoted word for fish: `\` and `'` are backslash-escaped.
pub fn fish(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// A single-quoted word for elvish: `'` is doubled.
pub fn elvish(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A raw string for nushell: `r#'…'#`, with as many `#` as it takes.
pub fn nu(s: &str) -> String {
    let mut hashes = "#".to_string();
    while s.contains(&format!("'{hashes}")) {
        hashes.push('#');
    }
    format!("r{hashes}'{s}'{hashes}")
}

/// A Python string literal for xonsh (JSON's escapes are Python's).
pub fn python(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn posix_quotes_round_trip_through_bash() {
        if crate::tests_support::skip_without("bash") {
            return;
        }
        for value in ["", "plain", "it's", "a\nb", "$HOME `x` \\ \"q\"", "'''"] {
            let out = std::process::Command::new("bash")
                .arg("-c")
                .arg(format!("printf %s {}", posix(value)))
                .output()
                .unwrap();
            assert_eq!(String::from_utf8(out.stdout).unwrap(), value);
        }
    }

    #[test]
    fn fish_quotes_round_trip_through_fish() {
        if crate::tests_support::skip_without("fish") {
            return;
        }
        for value in ["", "plain", "it's", "a\nb", "$HOME (x) \\ \"q\"", "\\'"] {
            let out = std::process::Command::new("fish")
                .arg("-N")
                .arg("-c")
                .arg(format!("printf %s {}", fish(value)))
                .output()
                .unwrap();
            assert_eq!(String::from_utf8(out.stdout).unwrap(), value);
        }
    }

    /// Run `program args… code` and return its stdout.
    fn printed(program: &str, args: &[&str], code: String) -> String {
        let out = std::process::Command::new(program)
            .args(args)
            .arg(code)
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    }

    const HARD: [&str; 7] = [
        "",
        "plain",
        "it's",
        "a\nb",
        "$HOME (x) \\ \"q\" {y}",
        "'#x'##",
        "/opt/my envy/bin/envy",
    ];

    #[test]
    fn elvish_quotes_round_trip_through_elvish() {
        if crate::tests_support::skip_without("elvish") {
            return;
        }
        for value in HARD {
            let code = format!("print {}", elvish(value));
            assert_eq!(printed("elvish", &["-norc", "-c"], code), value);
        }
    }

    #[test]
    fn nu_quotes_round_trip_through_nu() {
        if crate::tests_support::skip_without("nu") {
            return;
        }
        for value in HARD {
            let code = format!("print --no-newline {}", nu(value));
            assert_eq!(printed("nu", &["-n", "-c"], code), value);
        }
    }

    #[test]
    fn python_quotes_round_trip_through_xonsh() {
        if crate::tests_support::skip_without("xonsh") {
            return;
        }
        for value in HARD {
            let code = format!("print({}, end='')", python(value));
            assert_eq!(printed("xonsh", &["--no-rc", "-c"], code), value);
        }
    }
}
