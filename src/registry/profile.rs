//! Host capability profiles named in `imports:` (SPEC §5.1).

use super::model::Profile;
use super::validate::suggest;

/// The profile names, in the order the spec lists them.
pub const PROFILE_NAMES: &[&str] = &[
    "wasi:io",
    "wasi:poll",
    "wasi:clocks",
    "wasi:random",
    "wasi:cli",
    "wasi:filesystem",
    "wasi:sockets",
    "wasi:http",
    "funcs",
    "wippy:actor",
    "wasi1",
];

/// Maps a profile name, or an interface it provides (optionally `@version`), to its profile.
///
/// # Errors
/// An unknown name; the message lists the known profiles.
pub fn parse_profile(s: &str) -> Result<Profile, String> {
    let (name, version) = match s.split_once('@') {
        Some((name, version)) => (name, Some(version)),
        None => (s, None),
    };
    if version.is_some_and(|v| v.is_empty() || v.contains(char::is_whitespace)) {
        return Err(format!("invalid version in profile {s:?}"));
    }
    let profile = match name {
        "wasi:io" | "wasi:io/error" | "wasi:io/streams" => Profile::Io,
        "wasi:poll" | "wasi:io/poll" => Profile::Poll,
        "wasi:clocks" | "wasi:clocks/wall-clock" | "wasi:clocks/monotonic-clock" => Profile::Clocks,
        "wasi:random" => Profile::Random,
        "wasi:cli" => Profile::Cli,
        "wasi:filesystem" | "wasi:filesystem/types" | "wasi:filesystem/preopens" => Profile::Filesystem,
        "wasi:sockets" => Profile::Sockets,
        "wasi:http" | "wasi:http/types" | "wasi:http/outgoing-handler" => Profile::Http,
        "funcs" | "wippy:runtime" | "wippy:runtime/funcs" => Profile::Funcs,
        "wippy:actor" | "wippy:actor/process" => Profile::Actor,
        "wasi1" | "wasi_snapshot_preview1" => Profile::Wasi1,
        _ => match name.split_once('/') {
            Some(("wasi:random", i)) if is_interface(i) => Profile::Random,
            Some(("wasi:cli", i)) if is_interface(i) => Profile::Cli,
            Some(("wasi:sockets", i)) if is_interface(i) => Profile::Sockets,
            _ => {
                let hint =
                    suggest(name, PROFILE_NAMES).map(|close| format!(" did you mean {close:?}?")).unwrap_or_default();
                return Err(format!(
                    "unknown profile {s:?};{hint} known profiles: {} (or an interface they \
                     provide, like \"wasi:io/poll@0.2.3\")",
                    PROFILE_NAMES.join(", ")
                ));
            }
        },
    };
    Ok(profile)
}

fn is_interface(s: &str) -> bool {
    s == "*" || (!s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_names() {
        let cases = [
            ("wasi:io", Profile::Io),
            ("wasi:io/streams@0.2.0", Profile::Io),
            ("wasi:poll", Profile::Poll),
            ("wasi:io/poll@0.2.3", Profile::Poll),
            ("wasi:clocks/monotonic-clock", Profile::Clocks),
            ("wasi:random/insecure-seed@0.2.0", Profile::Random),
            ("wasi:random/*", Profile::Random),
            ("wasi:cli/stdout", Profile::Cli),
            ("wasi:filesystem/preopens@0.2.1", Profile::Filesystem),
            ("wasi:sockets/tcp", Profile::Sockets),
            ("wasi:http/outgoing-handler@0.2.0", Profile::Http),
            ("funcs", Profile::Funcs),
            ("wippy:runtime/funcs@0.1.0", Profile::Funcs),
            ("wippy:actor", Profile::Actor),
            ("wippy:actor/process@0.1.0", Profile::Actor),
            ("wasi1", Profile::Wasi1),
        ];
        for (name, profile) in cases {
            assert_eq!(parse_profile(name), Ok(profile), "{name}");
        }
        for name in PROFILE_NAMES {
            assert!(parse_profile(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn unknown_names() {
        for name in ["", "wasi", "wasi:io/poll@", "wasi:random/", "wasi:http/incoming-handler"] {
            assert!(parse_profile(name).is_err(), "{name}");
        }
        let err = parse_profile("wasi:gpu").unwrap_err();
        assert!(err.starts_with("unknown profile \"wasi:gpu\"; known profiles: wasi:io, "));
    }
}
