//! The test guest of the type mapping (wit/types.wit): an echo for every WIT type in every
//! position, top-level results, a resource, and a few realistic functions.

use std::cell::Cell;

wit_bindgen::generate!({
    world: "types",
    path: "wit",
});

use exports::wippy::types::counters::{self, CounterBorrow, GuestCell, GuestCounter};
use exports::wippy::types::users::{self, LookupError, User};

struct Component;

impl Guest for Component {
    fn echo_bool(v: bool) -> bool {
        v
    }
    fn echo_s8(v: i8) -> i8 {
        v
    }
    fn echo_u8(v: u8) -> u8 {
        v
    }
    fn echo_s16(v: i16) -> i16 {
        v
    }
    fn echo_u16(v: u16) -> u16 {
        v
    }
    fn echo_s32(v: i32) -> i32 {
        v
    }
    fn echo_u32(v: u32) -> u32 {
        v
    }
    fn echo_s64(v: i64) -> i64 {
        v
    }
    fn echo_u64(v: u64) -> u64 {
        v
    }
    fn echo_f32(v: f32) -> f32 {
        v
    }
    fn echo_f64(v: f64) -> f64 {
        v
    }
    fn echo_char(v: char) -> char {
        v
    }
    fn echo_string(v: String) -> String {
        v
    }
    fn echo_bytes(v: Vec<u8>) -> Vec<u8> {
        v
    }
    fn echo_byte_list(v: Vec<u8>) -> Vec<u8> {
        v
    }
    fn echo_list(v: Vec<i32>) -> Vec<i32> {
        v
    }
    fn echo_strings(v: Vec<String>) -> Vec<String> {
        v
    }
    fn echo_point(v: Point) -> Point {
        v
    }
    fn echo_tuple(v: (i32, String, bool)) -> (i32, String, bool) {
        v
    }
    fn echo_option(v: Option<i32>) -> Option<i32> {
        v
    }
    fn echo_nested_option(v: Option<Option<i32>>) -> Option<Option<i32>> {
        v
    }
    fn echo_options(v: Vec<Option<String>>) -> Vec<Option<String>> {
        v
    }
    fn echo_result(v: Result<i32, String>) -> Result<i32, String> {
        v
    }
    fn echo_results(v: Vec<Result<i32, String>>) -> Vec<Result<i32, String>> {
        v
    }
    fn echo_shape(v: Shape) -> Shape {
        v
    }
    fn echo_shapes(v: Vec<Shape>) -> Vec<Shape> {
        v
    }
    fn echo_color(v: Color) -> Color {
        v
    }
    fn echo_perms(v: Perms) -> Perms {
        v
    }
    fn echo_kitchen(v: Kitchen) -> Kitchen {
        v
    }
    fn echo_kitchens(v: Vec<Kitchen>) -> Vec<Kitchen> {
        v
    }
    fn echo_maybe_kitchen(v: Option<Kitchen>) -> Option<Kitchen> {
        v
    }
    fn echo_holder(v: Holder) -> Holder {
        v
    }
    fn echo_kitchen_result(v: Result<Kitchen, Kitchen>) -> Result<Kitchen, Kitchen> {
        v
    }

    fn check_positive(v: i32) -> Result<i32, String> {
        if v > 0 {
            Ok(v)
        } else {
            Err(format!("not positive: {v}"))
        }
    }
    fn unit_result(fail: bool) -> Result<(), ()> {
        if fail {
            Err(())
        } else {
            Ok(())
        }
    }
    fn maybe_fail(fail: bool) -> Result<(), String> {
        if fail {
            Err("failed".to_string())
        } else {
            Ok(())
        }
    }

    fn add(a: i32, b: i32) -> i32 {
        a.wrapping_add(b)
    }
    fn nothing() {}
    fn log(message: String) {
        println!("{message}");
    }
}

impl users::Guest for Component {
    fn transform_users(users: Vec<User>) -> Vec<User> {
        users
            .into_iter()
            .map(|mut u| {
                u.name = u.name.to_uppercase();
                if u.tags.is_empty() {
                    u.active = false;
                }
                u.tags.push("seen".to_string());
                u
            })
            .collect()
    }

    fn find_user(users: Vec<User>, id: u32) -> Result<User, LookupError> {
        users.into_iter().find(|u| u.id == id).ok_or_else(|| LookupError {
            code: 404,
            message: format!("no user {id}"),
        })
    }
}

/// The state behind a `counter` handle.
pub struct Counter {
    value: Cell<i64>,
}

impl GuestCounter for Counter {
    fn new(start: i64) -> Self {
        Counter { value: Cell::new(start) }
    }
    fn increment(&self, by: i64) -> i64 {
        let v = self.value.get().wrapping_add(by);
        self.value.set(v);
        v
    }
    fn value(&self) -> i64 {
        self.value.get()
    }
}

/// A cell whose WIT method `drop` empties it (not the resource destructor).
pub struct Cell64 {
    value: Cell<i64>,
}

impl GuestCell for Cell64 {
    fn new(v: i64) -> Self {
        Cell64 { value: Cell::new(v) }
    }
    fn drop(&self) -> i64 {
        self.value.replace(0)
    }
    fn get(&self) -> i64 {
        self.value.get()
    }
}

impl counters::Guest for Component {
    type Counter = Counter;
    type Cell = Cell64;

    fn make_cell(v: i64) -> counters::Cell {
        counters::Cell::new(Cell64::new(v))
    }

    fn make_counter(start: i64) -> counters::Counter {
        counters::Counter::new(Counter::new(start))
    }
    fn total(a: CounterBorrow<'_>, b: CounterBorrow<'_>) -> i64 {
        a.get::<Counter>().value().wrapping_add(b.get::<Counter>().value())
    }
}

export!(Component);
