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

/// What each profile provides: (profile, its name, the interfaces it links, the profiles it
/// brings along). The one list of WASI interfaces by profile: linking (`host/`) and `imports:`
/// parsing both read it.
///
/// A profile brings along the ones whose resource types its interfaces use: `wasi:cli`'s stdio
/// are `wasi:io` streams, and streams and clocks hand out `wasi:poll` pollables. Without them
/// the granted interface could not link.
const TABLE: &[(Profile, &str, &[&str], &[Profile])] = &[
    (Profile::Io, "wasi:io", &["wasi:io/error", "wasi:io/streams"], &[Profile::Poll]),
    (Profile::Poll, "wasi:poll", &["wasi:io/poll"], &[]),
    (Profile::Clocks, "wasi:clocks", &["wasi:clocks/wall-clock", "wasi:clocks/monotonic-clock"], &[Profile::Poll]),
    (Profile::Random, "wasi:random", &["wasi:random/random", "wasi:random/insecure", "wasi:random/insecure-seed"], &[]),
    (
        Profile::Cli,
        "wasi:cli",
        &[
            "wasi:cli/environment",
            "wasi:cli/exit",
            "wasi:cli/stdin",
            "wasi:cli/stdout",
            "wasi:cli/stderr",
            "wasi:cli/terminal-input",
            "wasi:cli/terminal-output",
            "wasi:cli/terminal-stdin",
            "wasi:cli/terminal-stdout",
            "wasi:cli/terminal-stderr",
        ],
        &[Profile::Io, Profile::Poll],
    ),
    (
        Profile::Filesystem,
        "wasi:filesystem",
        &["wasi:filesystem/types", "wasi:filesystem/preopens"],
        &[Profile::Io, Profile::Poll],
    ),
    (
        Profile::Sockets,
        "wasi:sockets",
        &[
            "wasi:sockets/network",
            "wasi:sockets/instance-network",
            "wasi:sockets/udp",
            "wasi:sockets/udp-create-socket",
            "wasi:sockets/tcp",
            "wasi:sockets/tcp-create-socket",
            "wasi:sockets/ip-name-lookup",
        ],
        &[Profile::Io, Profile::Poll],
    ),
    (Profile::Http, "wasi:http", &["wasi:http/types", "wasi:http/outgoing-handler"], &[Profile::Io, Profile::Poll]),
    (Profile::Funcs, "funcs", &["wippy:runtime/funcs"], &[]),
    (Profile::Actor, "wippy:actor", &["wippy:actor/process"], &[Profile::Poll]),
    (Profile::Wasi1, "wasi1", &[], &[]),
];

impl Profile {
    /// Every profile, in the order the spec lists them.
    pub const ALL: [Profile; 11] = [
        Profile::Io,
        Profile::Poll,
        Profile::Clocks,
        Profile::Random,
        Profile::Cli,
        Profile::Filesystem,
        Profile::Sockets,
        Profile::Http,
        Profile::Funcs,
        Profile::Actor,
        Profile::Wasi1,
    ];

    fn row(self) -> &'static (Profile, &'static str, &'static [&'static str], &'static [Profile]) {
        // The table lists every profile in `ALL` order.
        &TABLE[self as usize]
    }

    /// The name written in `imports:` (`wasi:cli`).
    pub fn name(self) -> &'static str {
        self.row().1
    }

    /// The component interfaces it links, without versions (`wasi:cli/stdout`).
    pub fn interfaces(self) -> &'static [&'static str] {
        self.row().2
    }

    /// The profiles it brings along.
    pub fn implies(self) -> &'static [Profile] {
        self.row().3
    }

    /// The profile providing an interface (`wasi:io/poll@0.2.3` → `wasi:poll`), if any.
    pub fn of_interface(name: &str) -> Option<Profile> {
        let name = name.split('@').next().unwrap_or(name);
        TABLE.iter().find(|row| row.2.contains(&name)).map(|row| row.0)
    }
}

/// A set of profiles, closed under [`Profile::implies`] when made by [`Profiles::granted`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Profiles(u16);

impl Profiles {
    /// Exactly these profiles (closed by hand: list the ones they bring along too).
    pub const fn of(list: &[Profile]) -> Profiles {
        let mut bits = 0u16;
        let mut i = 0;
        while i < list.len() {
            bits |= 1 << list[i] as u16;
            i += 1;
        }
        Profiles(bits)
    }

    /// The profiles an entry's `imports` grant, with the ones they bring along.
    pub fn granted(imports: &[Profile]) -> Profiles {
        let mut set = Profiles(0);
        for p in imports {
            set.add(*p);
        }
        set
    }

    fn add(&mut self, p: Profile) {
        if !self.has(p) {
            self.0 |= 1 << p as u16;
            for q in p.implies() {
                self.add(*q);
            }
        }
    }

    pub fn has(self, p: Profile) -> bool {
        self.0 & (1 << p as u16) != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The profiles in the set, in spec order.
    pub fn iter(self) -> impl Iterator<Item = Profile> {
        Profile::ALL.into_iter().filter(move |p| self.has(*p))
    }
}

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
    if let Some(row) = TABLE.iter().find(|row| row.1 == name || row.2.contains(&name)) {
        return Ok(row.0);
    }
    let profile = match name {
        "wippy:runtime" => Profile::Funcs,
        "wasi_snapshot_preview1" => Profile::Wasi1,
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
    fn table_follows_the_spec_order_and_closes_implications() {
        for (i, p) in Profile::ALL.iter().enumerate() {
            assert_eq!(TABLE[i].0, *p);
            assert_eq!(p.name(), PROFILE_NAMES[i]);
        }
        let cli = Profiles::granted(&[Profile::Cli]);
        assert!(cli.has(Profile::Io) && cli.has(Profile::Poll) && !cli.has(Profile::Filesystem));
        assert_eq!(Profile::of_interface("wasi:io/poll@0.2.3"), Some(Profile::Poll));
        assert_eq!(Profile::of_interface("wasi:cli/terminal-stdout@0.2.0"), Some(Profile::Cli));
        assert_eq!(Profile::of_interface("wasi:keyvalue/store"), None);
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
