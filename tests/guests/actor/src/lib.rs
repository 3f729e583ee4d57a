//! The test actor (wit/actor.wit, `wippy:actor/process`): it keeps a count across messages and
//! answers by topic, so specs can check state, replies, overload, polling and its EXIT.
//!
//! Topics: `count` adds one; `get` replies `count` with the number (text); `echo` replies
//! `echo` with the same payloads; `hold` sleeps the milliseconds given (its mailbox fills);
//! `poll` waits on the `subscribe` pollable for the next message and replies `polled` with its
//! topic; `stop` ends `run` with ok; `fail` ends it with an error.

use wippy::actor::process::{receive, send, subscribe, try_receive, Payload};

wit_bindgen::generate!({
    world: "counter",
    path: "wit",
    generate_all,
});

struct Actor;

fn text(s: &str) -> Vec<Payload> {
    vec![Payload { format: "text".into(), data: s.as_bytes().to_vec() }]
}

impl Guest for Actor {
    fn run() -> Result<(), String> {
        let mut n: u64 = 0;
        loop {
            let m = receive()?;
            match m.topic.as_str() {
                "count" => n += 1,
                "get" => send(&m.from, "count", &text(&n.to_string()))?,
                "echo" => send(&m.from, "echo", &m.payloads)?,
                "hold" => {
                    let ms = m
                        .payloads
                        .first()
                        .and_then(|p| std::str::from_utf8(&p.data).ok()?.parse::<u64>().ok())
                        .unwrap_or(100);
                    std::thread::sleep(std::time::Duration::from_millis(ms));
                }
                "poll" => {
                    subscribe().block();
                    let next = try_receive()?.map(|m| m.topic).unwrap_or_default();
                    send(&m.from, "polled", &text(&next))?;
                }
                "stop" => return Ok(()),
                "fail" => return Err(format!("asked to fail after {n} messages")),
                other => send(&m.from, "unknown", &text(other))?,
            }
        }
    }
}

export!(Actor);
