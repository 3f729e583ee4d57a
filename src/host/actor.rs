//! `wippy:actor/process@0.1.0` (profile `wippy:actor`, SPEC §7.3): an actor's pid, sending
//! messages to any pid, receiving from its own mailbox (waiting without holding a thread when
//! run asynchronously), and a `wasi:io/poll` pollable that is ready when a message is there.

use std::sync::Arc;

use wasmtime::component::{ComponentType, Lift, Linker, Lower, Resource};
use wasmtime::StoreContextMut;
use wasmtime_wasi::p2::DynPollable;

use super::state::HostState;
use crate::mailbox::{self, Mailbox, Message, Payload};

/// The interface, as guests import it.
pub const INTERFACE: &str = "wippy:actor/process@0.1.0";

#[derive(ComponentType, Lift, Lower, Clone)]
#[component(record)]
struct WitPayload {
    format: String,
    data: Vec<u8>,
}

#[derive(ComponentType, Lift, Lower, Clone)]
#[component(record)]
struct WitMessage {
    from: String,
    topic: String,
    payloads: Vec<WitPayload>,
}

impl From<Message> for WitMessage {
    fn from(m: Message) -> WitMessage {
        WitMessage {
            from: m.from,
            topic: m.topic,
            payloads: m.payloads.into_iter().map(|p| WitPayload { format: p.format, data: p.data }).collect(),
        }
    }
}

/// Readiness of a mailbox, for `subscribe`.
struct Arrival(Arc<Mailbox>);

#[wasmtime_wasi_io::async_trait]
impl wasmtime_wasi::p2::Pollable for Arrival {
    async fn ready(&mut self) {
        self.0.ready().await
    }
}

fn own(store: &StoreContextMut<'_, HostState>) -> wasmtime::Result<Arc<Mailbox>> {
    store
        .data()
        .mailbox
        .clone()
        .ok_or_else(|| wasmtime::format_err!("wippy:actor/process is for actors: run this entry with process.spawn"))
}

fn send(
    store: &StoreContextMut<'_, HostState>,
    target: &str,
    topic: String,
    payloads: Vec<WitPayload>,
) -> Result<(), String> {
    let from = store.data().mailbox.as_ref().map(|m| m.pid.clone()).unwrap_or_default();
    let payloads = payloads.into_iter().map(|p| Payload { format: p.format, data: p.data }).collect();
    mailbox::send(target, Message { from, topic, payloads })
}

fn subscribe(mut store: StoreContextMut<'_, HostState>) -> wasmtime::Result<Resource<DynPollable>> {
    let mb = own(&store)?;
    let table = &mut store.data_mut().table;
    let r = table.push(Arrival(mb))?;
    wasmtime_wasi::p2::subscribe(table, r)
}

/// Adds the interface (asynchronously: `receive` waits without a thread; synchronously: it
/// blocks the caller, which blocks anyway).
///
/// # Errors
/// A linker failure.
pub fn add(l: &mut Linker<HostState>, asynchronous: bool) -> wasmtime::Result<()> {
    let mut i = l.instance(INTERFACE)?;
    i.func_wrap("self", |store, (): ()| Ok((own(&store)?.pid.clone(),)))?;
    i.func_wrap("send", |store, (target, topic, payloads): (String, String, Vec<WitPayload>)| {
        Ok((send(&store, &target, topic, payloads),))
    })?;
    i.func_wrap("try-receive", |store, (): ()| {
        Ok((Ok::<_, String>(own(&store)?.try_receive().map(WitMessage::from)),))
    })?;
    i.func_wrap("subscribe", |store, (): ()| Ok((subscribe(store)?,)))?;
    if asynchronous {
        i.func_wrap_async("receive", |store, (): ()| {
            let mb = own(&store);
            Box::new(async move {
                let mb = mb?;
                Ok((Ok::<_, String>(WitMessage::from(mb.receive().await)),))
            })
        })?;
    } else {
        i.func_wrap("receive", |store, (): ()| {
            let mb = own(&store)?;
            let m = crate::sched::block_on(async move { mb.receive().await })
                .map_err(|e| wasmtime::format_err!("{}", e.message))?;
            Ok((Ok::<_, String>(WitMessage::from(m)),))
        })?;
    }
    Ok(())
}
