//! containerlab's environment variables in a topology file's text,
//! expanded before the YAML is read, as containerlab's `envsubst` does
//! (with its "leave unset ones as they are" setting):
//!
//! - `$VAR`, `${VAR}`: the value; unset or empty, `$VAR` is left;
//! - `${VAR:=d}`, `${VAR:-d}`: the value if not empty, else `d`;
//! - `${VAR=d}`, `${VAR-d}`: the value if set, else `d`;
//! - `${VAR:+a}`, `${VAR+a}`: `a` if set, else nothing;
//! - `$$`: one `$` (the way to write a shell's `$` in an `exec` step);
//! - `$1`, a `$` before anything else: left as it is.

/// The text with its variables replaced from `env`, or why it cannot be
/// (a `${` not closed on its line, or a result longer than `limit` bytes).
pub(crate) fn expand_env(
    text: &str,
    limit: usize,
    env: impl Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        if out.len() > limit {
            return Err(format!(
                "its variables expand it past {limit} bytes, the most a topology file may hold"
            ));
        }
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(more) = after.strip_prefix('$') {
            out.push('$');
            rest = more;
        } else if let Some(inner) = after.strip_prefix('{') {
            let Some(end) = inner
                .find(['}', '\n'])
                .filter(|&e| inner[e..].starts_with('}'))
            else {
                let line = text[..text.len() - rest.len() + at].matches('\n').count() + 1;
                return Err(format!(
                    "line {line}: \"${{\" is not closed by \"}}\" on its line"
                ));
            };
            let expr = &inner[..end];
            match braced(expr, &env) {
                Some(value) => out.push_str(&value),
                None => {
                    out.push('$');
                    out.push('{');
                    out.push_str(expr);
                    out.push('}');
                }
            }
            rest = &inner[end + 1..];
        } else {
            let len = name_len(after);
            match (len, env(&after[..len])) {
                (0, _) => out.push('$'),
                (_, Some(value)) if !value.is_empty() => out.push_str(&value),
                _ => {
                    out.push('$');
                    out.push_str(&after[..len]);
                }
            }
            rest = &after[len..];
        }
    }
    out.push_str(rest);
    if out.len() > limit {
        return Err(format!(
            "its variables expand it past {limit} bytes, the most a topology file may hold"
        ));
    }
    Ok(out)
}

/// The length of the variable name `text` starts with (0: none; a name
/// does not start with a digit).
fn name_len(text: &str) -> usize {
    if text.starts_with(|c: char| c.is_ascii_digit()) {
        return 0;
    }
    text.find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(text.len())
}

/// The value of `${expr}`; `None` leaves it as written.
fn braced(expr: &str, env: &impl Fn(&str) -> Option<String>) -> Option<String> {
    let len = name_len(expr);
    if len == 0 {
        return None;
    }
    let (name, rule) = expr.split_at(len);
    let value = env(name);
    let set = value.is_some();
    let full = value.clone().filter(|v| !v.is_empty());
    let left = || Some(format!("${name}"));
    for (op, pick) in [
        (":=", 0),
        (":-", 0),
        (":+", 2),
        ("=", 1),
        ("-", 1),
        ("+", 3),
    ] {
        if let Some(word) = rule.strip_prefix(op) {
            // An empty default is none; a default of one `$NAME` is expanded.
            let word = match word.strip_prefix('$') {
                Some(other) if name_len(other) == other.len() && !other.is_empty() => {
                    env(other).unwrap_or_else(|| word.to_owned())
                }
                _ => word.to_owned(),
            };
            let word = word.as_str();
            if word.is_empty() && pick != 2 && pick != 3 {
                return full.or_else(left);
            }
            return match pick {
                0 => full.or_else(|| Some(word.to_owned())),
                1 if set => full.or_else(left),
                1 => Some(word.to_owned()),
                _ => Some(if set { word.to_owned() } else { String::new() }),
            };
        }
    }
    match rule {
        "" => full.or_else(left),
        _ => None,
    }
}
