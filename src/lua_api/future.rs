//! The object behind `funcs.async` and a task's pending call: a started call whose result is
//! converted to Lua values on the Lua thread when someone collects it (SPEC §2 futures).
//!
//! Waiting is the scheduler's business (`lua/sched.lua`): a task yields the future and is
//! resumed with what [`LuaFuture::collect`] returns; a caller outside a task blocks in `wait`.

use std::cell::RefCell;
use std::sync::Arc;

use mlua::{Lua, MultiValue, RegistryKey, UserData, UserDataMethods, Value};

use super::error::LuaError;
use super::funcs::output_to_lua;
use crate::call::Output;
use crate::error::Error;
use crate::runtime::Loaded;
use crate::sched::Op;

pub struct LuaFuture {
    pub op: Arc<Op<Result<Output, Error>>>,
    loaded: Arc<Loaded>,
    /// The converted result once collected, so every `result()` returns the same values.
    collected: RefCell<Option<Vec<RegistryKey>>>,
    /// The executor's `record_keys` (`None`: as configured when the result is collected).
    snake_keys: Option<bool>,
}

impl LuaFuture {
    pub fn new(op: Arc<Op<Result<Output, Error>>>, loaded: Arc<Loaded>) -> LuaFuture {
        LuaFuture { op, loaded, collected: RefCell::default(), snake_keys: None }
    }

    /// Its result records keyed as the executor's `record_keys` says.
    pub fn keyed(mut self, snake_keys: Option<bool>) -> LuaFuture {
        self.snake_keys = snake_keys;
        self
    }

    /// A future that is already done (a Lua function entry, or a call with resources, ran
    /// on this thread): its values are kept in the Lua registry.
    pub fn completed(lua: &Lua, loaded: Arc<Loaded>, values: MultiValue) -> mlua::Result<MultiValue> {
        let keys = values.into_iter().map(|v| lua.create_registry_value(v)).collect::<mlua::Result<Vec<_>>>()?;
        let op = Op::new(Arc::default(), crate::sched::Control::new(0, 0));
        op.complete(Ok(Output::Core(Vec::new())));
        let future = LuaFuture::new(op, loaded);
        *future.collected.borrow_mut() = Some(keys);
        let ud = lua.create_userdata(future)?;
        Ok(MultiValue::from_iter([Value::UserData(ud)]))
    }

    /// The call's return values (`result, nil` or `nil, err`), converting them the first time.
    /// Call only when the operation is done.
    pub fn collect(&self, lua: &Lua) -> mlua::Result<MultiValue> {
        if let Some(keys) = &*self.collected.borrow() {
            return keys.iter().map(|k| lua.registry_value::<Value>(k)).collect();
        }
        let values = match self.op.take() {
            None => return Ok(MultiValue::new()),
            // A command's run gives its exit code (an exit is not a failure there).
            Some(r) if self.loaded.code().is_some_and(|f| f.command) => match crate::call::process::exit_code(r) {
                Ok(code) => MultiValue::from_iter([Value::Integer(code.into())]),
                Err(e) => MultiValue::from_iter([Value::Nil, Value::UserData(lua.create_userdata(LuaError(e))?)]),
            },
            Some(Err(e)) => MultiValue::from_iter([Value::Nil, Value::UserData(lua.create_userdata(LuaError(e))?)]),
            Some(Ok(out)) => match self.loaded.code() {
                Some(f) => match crate::convert::with_record_keys(self.snake_keys, || output_to_lua(lua, f, out)) {
                    Ok(v) => v,
                    Err(e) => MultiValue::from_iter([Value::Nil, Value::UserData(lua.create_userdata(LuaError(e))?)]),
                },
                None => MultiValue::new(),
            },
        };
        let keys = values.iter().map(|v| lua.create_registry_value(v.clone())).collect::<mlua::Result<Vec<_>>>()?;
        *self.collected.borrow_mut() = Some(keys);
        Ok(values)
    }

    fn is_complete(&self) -> bool {
        self.collected.borrow().is_some() || self.op.is_done()
    }
}

impl UserData for LuaFuture {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        // The scheduler's view: `true, values...` when done, `false` while running.
        methods.add_method("poll", |lua, this, ()| {
            if !this.is_complete() {
                return Ok(MultiValue::from_iter([Value::Boolean(false)]));
            }
            let mut out = this.collect(lua)?;
            out.push_front(Value::Boolean(true));
            Ok(out)
        });
        // Blocks this thread until done (callers outside a task), running the Lua functions
        // guests call meanwhile (the call's guest may be waiting for one).
        methods.add_method("wait", |lua, this, ()| {
            let inbox = super::state::data(lua).inbox.clone();
            while !this.is_complete() {
                for job in inbox.serve_wait(|| this.op.is_done(), None) {
                    super::guest::run_now(lua, job);
                }
            }
            this.collect(lua)
        });
        methods.add_method("id", |_, this, ()| Ok(this.op.id));
        methods.add_method("seq", |_, this, ()| Ok(this.op.done_seq()));
        methods.add_method("watch", |_, this, ()| {
            this.op.watch();
            Ok(())
        });
        methods.add_method("is_complete", |_, this, ()| Ok(this.is_complete()));
        methods.add_method("is_canceled", |_, this, ()| Ok(this.op.control.is_canceled()));
        methods.add_method("cancel", |_, this, ()| {
            this.op.control.cancel();
            Ok(true)
        });
        methods.add_method("error", |lua, this, ()| {
            if !this.is_complete() {
                return Ok(Value::Nil);
            }
            let values = this.collect(lua)?;
            let mut it = values.into_iter();
            Ok(match (it.next(), it.next()) {
                (Some(Value::Nil), Some(e)) => e,
                _ => Value::Nil,
            })
        });
    }
}
