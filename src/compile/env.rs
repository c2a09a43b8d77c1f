//! `${ENV}` and `${ENV:-default}` in `vars` values and `target`.

/// Expands environment variables with `lookup`. Errors carry an offset into `text`.
pub fn expand(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, (usize, String, Option<String>)> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut base = 0;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err((
                base + start,
                "unclosed `${`: write `${NAME}` or `${NAME:-default}`".into(),
                None,
            ));
        };
        let inner = &after[..end];
        let (name, default) = match inner.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (inner, None),
        };
        let valid = !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err((
                base + start,
                format!("`{name}` is not an environment variable name"),
                Some("write `${NAME}` or `${NAME:-default}`".into()),
            ));
        }
        match (lookup(name), default) {
            (Some(v), _) => out.push_str(&v),
            (None, Some(d)) => out.push_str(d),
            (None, None) => {
                return Err((
                    base + start,
                    format!("the environment variable `{name}` is not set"),
                    Some(format!("set it, or give a default: `${{{name}:-value}}`")),
                ));
            }
        }
        let consumed = start + 2 + end + 1;
        base += consumed;
        rest = &rest[consumed..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "HOST").then(|| "example".to_owned())
    }

    #[test]
    fn expands_with_defaults() {
        assert_eq!(
            expand("http://${HOST}:8080", env).unwrap(),
            "http://example:8080"
        );
        assert_eq!(expand("${REGION:-eu}", env).unwrap(), "eu");
        assert_eq!(expand("${HOST:-x}", env).unwrap(), "example");
        assert_eq!(expand("plain", env).unwrap(), "plain");
    }

    #[test]
    fn unset_without_default_is_an_error() {
        let e = expand("key ${API_KEY}", env).unwrap_err();
        assert_eq!(e.0, 4);
        assert!(e.1.contains("`API_KEY` is not set"));
        assert!(expand("${oops", env).is_err());
        assert!(expand("${1X}", env).is_err());
    }
}
