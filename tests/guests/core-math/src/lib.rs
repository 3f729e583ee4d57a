//! A core module (no WIT) for the specs: numbers of every core type, and ways to fail.
#![no_std]

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    core::arch::wasm32::unreachable()
}

#[no_mangle]
pub extern "C" fn add_i64(a: i64, b: i64) -> i64 {
    a.wrapping_add(b)
}

#[no_mangle]
pub extern "C" fn mul_f64(a: f64, b: f64) -> f64 {
    a * b
}

#[no_mangle]
pub extern "C" fn half_f32(a: f32) -> f32 {
    a / 2.0
}

/// Traps (integer divide by zero) when `b` is 0.
#[no_mangle]
pub extern "C" fn divide(a: i32, b: i32) -> i32 {
    if b == 0 {
        panic!("divide by zero")
    }
    a / b
}

/// Recurses without end: a stack overflow.
#[no_mangle]
pub extern "C" fn recurse(n: i32) -> i32 {
    if n == i32::MIN {
        return 0;
    }
    // black_box keeps the recursion from being turned into a loop.
    core::hint::black_box(recurse(core::hint::black_box(n.wrapping_add(1)))).wrapping_add(1)
}

/// Returns two values (a multi-value core export).
#[no_mangle]
pub extern "C" fn counter() -> i32 {
    unsafe {
        COUNT += 1;
        COUNT
    }
}

static mut COUNT: i32 = 0;
