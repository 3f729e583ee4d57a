//! YAML text -> [`Node`] tree with 1-based lines, through saphyr's `MarkedYamlOwned`.
//!
//! A mapping value takes the line of its key, so a problem with a field points at the line
//! where the field is written (also for block values that start on the next line).
//!
//! saphyr builds, hashes and drops its tree recursively, so a hostile file (`- - - - …` a
//! million times, or aliases of aliases) could overflow the stack. Parsing therefore runs on
//! its own thread with a large stack, and only after a cheap textual bound shows the nesting
//! cannot exceed what that stack holds. The tree handed back is at most [`MAX_DEPTH`] deep.

use saphyr::{LoadableYamlNode, MarkedYamlOwned, ScalarOwned, YamlDataOwned};

use super::value::{Node, Value};

/// Deepest nesting kept; registry files need a handful of levels, `meta` a few more.
pub const MAX_DEPTH: usize = 128;

/// Nesting the parser thread can build and drop without running out of stack.
const MAX_SCAN_DEPTH: usize = 20_000;

const PARSER_STACK: usize = 64 << 20;

/// A YAML problem with the 1-based line it was found at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct YamlError {
    pub line: u32,
    pub message: String,
}

/// Parses one YAML document. An empty document (or only comments) is `Value::Null` at line 1.
///
/// # Errors
/// Syntax errors (with saphyr's message and column), several documents in one stream,
/// non-scalar mapping keys, unresolvable values (`!!int abc`, an unknown alias), and nesting
/// deeper than [`MAX_DEPTH`].
pub fn parse(text: &str) -> Result<Node, YamlError> {
    if nesting_bound(text) > MAX_SCAN_DEPTH {
        return Err(YamlError {
            line: 1,
            message: format!("YAML nesting too deep to load safely; keep it under {MAX_DEPTH} levels"),
        });
    }
    let spawned = std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("wippy-yaml".into())
            .stack_size(PARSER_STACK)
            .spawn_scoped(scope, || parse_here(text))
            .map(|handle| handle.join())
    });
    match spawned {
        Ok(Ok(result)) => result,
        // saphyr panicked on this input: report it instead of taking the host down.
        Ok(Err(_)) => {
            Err(YamlError { line: 1, message: "the YAML parser failed on this file (internal error)".into() })
        }
        // No thread available: the textual bound still keeps the recursion modest.
        Err(_) => parse_here(text),
    }
}

fn parse_here(text: &str) -> Result<Node, YamlError> {
    let docs = MarkedYamlOwned::load_from_str(text).map_err(|e| YamlError {
        line: line_of(e.marker().line()),
        message: format!("invalid YAML (column {}): {}", e.marker().col() + 1, e.info()),
    })?;
    let mut docs = docs.into_iter();
    let Some(root) = docs.next() else {
        return Ok(Node::new(1, Value::Null));
    };
    if let Some(second) = docs.next() {
        return Err(YamlError {
            line: line_of(second.span.start.line()),
            message: "more than one YAML document in this file; keep one document per file".into(),
        });
    }
    if let Some(line) = too_deep(&root) {
        return Err(YamlError { line, message: format!("YAML nested more than {MAX_DEPTH} levels deep") });
    }
    if matches!(root.data, YamlDataOwned::BadValue) {
        // saphyr's representation of an empty document.
        return Ok(Node::new(1, Value::Null));
    }
    convert(root)
}

fn line_of(line: usize) -> u32 {
    u32::try_from(line).unwrap_or(u32::MAX).max(1)
}

/// An upper bound of the nesting saphyr could build from `text`, without parsing it.
///
/// Going two levels down in block style always moves right by at least one column, and all
/// block collections that start on one line start inside its prefix of indicators (`- `,
/// `? `, `: `) and properties (`&a`, `!t`). Flow collections add at most one level per
/// bracket, and each anchor can at most repeat the whole depth once more through an alias.
fn nesting_bound(text: &str) -> usize {
    let mut widest_prefix = 0usize;
    let mut brackets = 0usize;
    let mut anchors = 0usize;
    for line in text.lines() {
        let mut prefix = 0usize;
        let mut in_prefix = true;
        for token in line.split_inclusive([' ', '\t']) {
            let word = token.trim_end_matches([' ', '\t']);
            let indicator = matches!(word, "" | "-" | "?" | ":") || word.starts_with(['&', '!']);
            if in_prefix && indicator {
                prefix += token.chars().count();
            } else {
                in_prefix = false;
            }
            if word.starts_with('&') {
                anchors += 1;
            }
            brackets += word.matches(['[', '{']).count();
        }
        widest_prefix = widest_prefix.max(prefix);
    }
    let base = 2 * (widest_prefix + 2) + brackets.min(256) + 2;
    base.saturating_mul(anchors.saturating_add(1))
}

/// The line of the first node deeper than [`MAX_DEPTH`], walking without recursion.
fn too_deep(root: &MarkedYamlOwned) -> Option<u32> {
    let mut stack = vec![(root, 1usize)];
    while let Some((node, depth)) = stack.pop() {
        if depth > MAX_DEPTH {
            return Some(line_of(node.span.start.line()));
        }
        match &node.data {
            YamlDataOwned::Sequence(items) => {
                stack.extend(items.iter().rev().map(|n| (n, depth + 1)));
            }
            YamlDataOwned::Mapping(map) => {
                let pairs: Vec<_> = map.iter().collect();
                for (k, v) in pairs.into_iter().rev() {
                    stack.push((v, depth + 1));
                    stack.push((k, depth + 1));
                }
            }
            YamlDataOwned::Tagged(_, inner) => stack.push((inner, depth + 1)),
            _ => {}
        }
    }
    None
}

/// Converts a tree already known to be at most [`MAX_DEPTH`] deep.
fn convert(node: MarkedYamlOwned) -> Result<Node, YamlError> {
    let line = line_of(node.span.start.line());
    let value = match node.data {
        YamlDataOwned::Value(scalar) => scalar_value(scalar),
        YamlDataOwned::Representation(text, _, _) => Value::Str(text),
        YamlDataOwned::Sequence(items) => Value::Seq(items.into_iter().map(convert).collect::<Result<_, _>>()?),
        YamlDataOwned::Mapping(map) => {
            let mut items = Vec::with_capacity(map.len());
            for (key, value) in map {
                let key_line = line_of(key.span.start.line());
                let key = key_text(key)?;
                let mut value = convert(value)?;
                value.line = key_line;
                items.push((key, value));
            }
            Value::Map(items)
        }
        // Tags carry nothing the registry uses; the tagged value is what counts.
        YamlDataOwned::Tagged(_, inner) => return convert(*inner),
        YamlDataOwned::Alias(_) | YamlDataOwned::BadValue => {
            return Err(YamlError {
                line,
                message: "invalid YAML value (an unknown alias, or a tag that does not fit \
                          the value)"
                    .into(),
            })
        }
    };
    Ok(Node::new(line, value))
}

fn scalar_value(scalar: ScalarOwned) -> Value {
    match scalar {
        ScalarOwned::Null => Value::Null,
        ScalarOwned::Boolean(b) => Value::Bool(b),
        ScalarOwned::Integer(i) => Value::Int(i),
        ScalarOwned::FloatingPoint(f) => Value::Float(f.into_inner()),
        ScalarOwned::String(s) => Value::Str(s),
    }
}

fn key_text(key: MarkedYamlOwned) -> Result<String, YamlError> {
    let line = line_of(key.span.start.line());
    match key.data {
        YamlDataOwned::Value(ScalarOwned::String(s)) | YamlDataOwned::Representation(s, _, _) => Ok(s),
        YamlDataOwned::Value(ScalarOwned::Integer(i)) => Ok(i.to_string()),
        YamlDataOwned::Value(ScalarOwned::Boolean(b)) => Ok(b.to_string()),
        YamlDataOwned::Value(ScalarOwned::FloatingPoint(f)) => Ok(f.into_inner().to_string()),
        YamlDataOwned::Value(ScalarOwned::Null) => Ok("null".into()),
        YamlDataOwned::Tagged(_, inner) => key_text(*inner),
        _ => Err(YamlError { line, message: "mapping keys must be plain strings, not sequences or mappings".into() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(items: Vec<(&str, Node)>) -> Value {
        Value::Map(items.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    }

    #[test]
    fn scalars_and_lines() {
        let text = "a: 1\nb: x\nc:\n  - true\n  - 1.5\n  - ~\nd:\n  e: \"0755\"\n";
        let node = parse(text).unwrap();
        let expected = Node::new(
            1,
            map(vec![
                ("a", Node::new(1, Value::Int(1))),
                ("b", Node::new(2, Value::Str("x".into()))),
                (
                    "c",
                    Node::new(
                        3,
                        Value::Seq(vec![
                            Node::new(4, Value::Bool(true)),
                            Node::new(5, Value::Float(1.5)),
                            Node::new(6, Value::Null),
                        ]),
                    ),
                ),
                ("d", Node::new(7, map(vec![("e", Node::new(8, Value::Str("0755".into())))]))),
            ]),
        );
        assert_eq!(node, expected);
    }

    #[test]
    fn empty_documents_are_null() {
        for text in ["", "# only a comment\n", "---\n"] {
            assert_eq!(parse(text).unwrap().value, Value::Null, "{text:?}");
        }
    }

    #[test]
    fn sequence_items_keep_their_own_line() {
        let node = parse("entries:\n  - name: a\n    kind: x\n\n  - name: b\n").unwrap();
        let entries = node.get("entries").unwrap();
        assert_eq!(entries.line, 1);
        let Value::Seq(items) = &entries.value else { panic!("not a sequence") };
        assert_eq!(items.iter().map(|n| n.line).collect::<Vec<_>>(), vec![2, 5]);
    }

    #[test]
    fn aliases_are_expanded() {
        let node = parse("a: &p {size: 2}\nb: *p\n").unwrap();
        assert_eq!(node.get("b").unwrap().get("size").unwrap().value, Value::Int(2));
    }

    #[test]
    fn errors() {
        let cases: &[(&str, u32, &str)] = &[
            ("a: b: c\n", 1, "invalid YAML (column 5): mapping values are not allowed"),
            ("a: 1\na: 2\n", 2, "invalid YAML (column 1): duplicated key in mapping"),
            ("a: 1\n---\nb: 2\n", 3, "more than one YAML document"),
            ("? [a]\n: 1\n", 1, "mapping keys must be plain strings"),
            ("a: !!int abc\n", 1, "invalid YAML value"),
            ("a: *nope\n", 1, "invalid YAML (column 4): while parsing node, found unknown anchor"),
        ];
        for (text, line, start) in cases {
            let err = parse(text).unwrap_err();
            assert_eq!(err.line, *line, "{text:?}: {err:?}");
            assert!(err.message.starts_with(start), "{text:?}: {err:?}");
        }
    }

    #[test]
    fn hostile_nesting_is_rejected_without_overflow() {
        let deep_block = "- ".repeat(200_000) + "x\n";
        assert!(parse(&deep_block).unwrap_err().message.contains("too deep"));
        let deep_flow = "[".repeat(200) + &"]".repeat(200);
        assert!(parse(&deep_flow).unwrap_err().message.contains("nested more than"));
        let mut aliases = String::from("a0: &a0 [[[[[[[[[[1]]]]]]]]]]\n");
        for i in 1..40 {
            aliases.push_str(&format!("a{i}: &a{i} [[[[[[[[[[*a{}]]]]]]]]]]\n", i - 1));
        }
        assert!(parse(&aliases).is_err());
    }

    #[test]
    fn random_text_never_panics() {
        const PIECES: &[&str] = &[
            "- ",
            "a",
            ": ",
            "\n",
            "  ",
            "[",
            "]",
            "{",
            "}",
            ",",
            "&x ",
            "*x",
            "!!int ",
            "? ",
            "\"",
            "'",
            "|",
            ">",
            "#",
            "---\n",
            "...",
            "%YAML 1.2\n",
            "\t",
            "é",
            "\0",
            "0o7",
        ];
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..2000 {
            let mut text = String::new();
            for _ in 0..(state % 40) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                text.push_str(PIECES[(state % PIECES.len() as u64) as usize]);
            }
            let _ = parse(&text);
        }
    }

    #[test]
    fn modest_nesting_is_fine() {
        let text = "- ".repeat(100) + "x\n";
        assert!(parse(&text).is_ok());
    }
}
