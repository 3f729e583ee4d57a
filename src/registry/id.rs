//! Entry IDs (`namespace:name`), their parts, and references to other entries.

use super::model::Id;

const NAMESPACE_RULE: &str = "use dot-separated parts of letters, digits, \"_\" and \"-\", \
                              each starting with a letter or \"_\" (like \"app.api\")";
const NAME_RULE: &str = "use letters, digits, \"_\", \".\" and \"-\", starting with a letter, \
                         digit or \"_\"";

/// Whether `s` is a valid namespace: segments `[A-Za-z_][A-Za-z0-9_-]*` joined by `.`.
pub fn is_namespace(s: &str) -> bool {
    s.split('.').all(|segment| {
        let mut chars = segment.chars();
        chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    })
}

/// Whether `s` is a valid entry name: `[A-Za-z0-9_][A-Za-z0-9_.-]*`.
pub fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Checks a namespace, with the rule in the message.
pub fn check_namespace(s: &str) -> Result<(), String> {
    if is_namespace(s) {
        Ok(())
    } else {
        Err(format!("invalid namespace {s:?}: {NAMESPACE_RULE}"))
    }
}

/// Checks an entry name, with the rule in the message.
pub fn check_name(s: &str) -> Result<(), String> {
    if is_name(s) {
        Ok(())
    } else {
        Err(format!("invalid name {s:?}: {NAME_RULE}"))
    }
}

/// Parses `namespace:name`, split at the first `:`.
///
/// # Errors
/// A message naming what is wrong: empty, no namespace, no name, or bad characters.
pub fn parse_id(s: &str) -> Result<Id, String> {
    if s.is_empty() {
        return Err("entry ID required (\"namespace:name\")".into());
    }
    let Some((namespace, name)) = s.split_once(':') else {
        return Err(format!("namespace required in entry ID {s:?} (\"namespace:name\")"));
    };
    if namespace.is_empty() {
        return Err(format!("namespace required in entry ID {s:?} (\"namespace:name\")"));
    }
    if name.is_empty() {
        return Err(format!("name required in entry ID {s:?}"));
    }
    if !is_namespace(namespace) {
        return Err(format!("invalid namespace {namespace:?} in entry ID {s:?}: {NAMESPACE_RULE}"));
    }
    if !is_name(name) {
        return Err(format!("invalid name {name:?} in entry ID {s:?}: {NAME_RULE}"));
    }
    Ok(Id { namespace: namespace.into(), name: name.into() })
}

/// A reference to another entry: a full ID, or a bare name in `namespace`.
pub fn parse_ref(s: &str, namespace: &str) -> Result<Id, String> {
    if s.contains(':') {
        parse_id(s)
    } else if is_name(s) {
        Ok(Id { namespace: namespace.into(), name: s.into() })
    } else {
        Err(format!(
            "invalid reference {s:?}: expected an entry ID (\"namespace:name\") or a name in \
             this namespace"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces() {
        for ok in ["app", "app.api", "_x.y-z", "A1.b_2"] {
            assert!(is_namespace(ok), "{ok}");
        }
        for bad in ["", ".app", "app.", "app..x", "1app", "app.-x", "a b", "app:x", "é"] {
            assert!(!is_namespace(bad), "{bad}");
        }
    }

    #[test]
    fn names() {
        for ok in ["x", "compute", "1st", "_a", "a.b-c_d", "v1.2"] {
            assert!(is_name(ok), "{ok}");
        }
        for bad in ["", ".x", "-x", "a b", "a:b", "a/b", "ñ"] {
            assert!(!is_name(bad), "{bad}");
        }
    }

    #[test]
    fn ids() {
        let id = parse_id("app.api:compute.v2").unwrap();
        assert_eq!((id.namespace.as_str(), id.name.as_str()), ("app.api", "compute.v2"));
        assert_eq!(id.to_string(), "app.api:compute.v2");
        let cases = [
            ("", "entry ID required"),
            ("compute", "namespace required in entry ID \"compute\""),
            (":compute", "namespace required"),
            ("app:", "name required in entry ID \"app:\""),
            ("app..x:y", "invalid namespace \"app..x\""),
            ("app:a:b", "invalid name \"a:b\""),
        ];
        for (input, start) in cases {
            let err = parse_id(input).unwrap_err();
            assert!(err.starts_with(start), "{input:?}: {err}");
        }
    }

    #[test]
    fn refs() {
        assert_eq!(parse_ref("data", "app").unwrap().to_string(), "app:data");
        assert_eq!(parse_ref("lib:data", "app").unwrap().to_string(), "lib:data");
        assert!(parse_ref("a b", "app").is_err());
        assert!(parse_ref("lib:", "app").is_err());
    }
}
