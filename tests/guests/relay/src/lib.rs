//! The test guest of registry calls from WebAssembly (wit/relay.wit): it calls entries through
//! `wippy:runtime/funcs` and is called through it, so specs can check contexts, permissions,
//! nesting and re-entrancy across Lua and WebAssembly.

use std::cell::Cell;

use exports::wippy::relay_test::counters::GuestCounter;
use wippy::runtime::funcs::{call_bytes, call_string};

wit_bindgen::generate!({
    world: "relay",
    path: "wit",
    generate_all,
});

struct Component;

struct Counter(Cell<u32>);

impl GuestCounter for Counter {
    fn new() -> Counter {
        Counter(Cell::new(0))
    }

    fn incr(&self) -> u32 {
        self.0.set(self.0.get() + 1);
        self.0.get()
    }
}

impl Guest for Component {
    fn relay(target: String, input: String) -> Result<String, String> {
        call_string(&target, &input)
    }

    fn relay_bytes(target: String, input: Vec<u8>) -> Result<Vec<u8>, String> {
        call_bytes(&target, &input)
    }

    fn hop(input: String) -> Result<String, String> {
        let (target, rest) = input.split_once('|').unwrap_or((input.as_str(), ""));
        call_string(target, rest).map(|r| format!("hop({r})"))
    }

    fn recurse(input: String) -> Result<String, String> {
        // Each level adds one `+` to the error it passes up, so the caller sees the depth.
        call_string(&input, &input).map_err(|e| format!("+{e}"))
    }

    fn echo(input: String) -> String {
        input
    }

    fn upper(input: String) -> Result<String, String> {
        if input.is_empty() {
            return Err("empty input".into());
        }
        Ok(input.to_uppercase())
    }

    fn size(input: Vec<u8>) -> u32 {
        input.len() as u32
    }

    fn describe(input: String) -> Info {
        Info {
            length: input.len() as u32,
            words: input.split_whitespace().map(str::to_string).collect(),
            text: input,
        }
    }
}

impl exports::wippy::relay_test::counters::Guest for Component {
    type Counter = Counter;

    fn bump(c: exports::wippy::relay_test::counters::CounterBorrow<'_>, target: String) -> Result<String, String> {
        let n = c.get::<Counter>().incr();
        call_string(&target, "bump").map(|r| format!("{n}:{r}"))
    }
}

export!(Component);
