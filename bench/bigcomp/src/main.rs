//! Writes a large, reproducible WebAssembly component: `bigcomp OUT.wasm [MIB]`.
//!
//! The core module holds about `MIB` MiB (default 20; counted as 2 KiB of instructions per
//! function, so the binary comes out ≈ 1.2× larger) of generated code: thousands of functions of
//! straight-line integer arithmetic with a few branches, reachable through a table, so a
//! compiler has real work for every byte. Its WIT world exports
//!
//!     add: func(a: u32, b: u32) -> u32;
//!     work: func(n: u32, x: u32) -> u32;   // calls generated function n (mod their count) on x
//!
//! and wit-component wraps it as a component. The output depends only on `MIB`.

use anyhow::{Context, Result};
use wasm_encoder::{
    BlockType, CodeSection, ConstExpr, ElementSection, Elements, ExportKind, ExportSection, Function, FunctionSection,
    Instruction as I, MemorySection, MemoryType, Module, RefType, TableSection, TableType, TypeSection, ValType,
};

const WIT: &str = r#"
package bench:big;

world big {
  export add: func(a: u32, b: u32) -> u32;
  export work: func(n: u32, x: u32) -> u32;
}
"#;

/// Bytes of body per generated function, as estimated while generating (constants take more).
const BODY_BYTES: usize = 2048;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*: deterministic, no dependency.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One generated function `(x: i32) -> i32` with 6 locals.
fn filler(rng: &mut Rng) -> Function {
    let mut f = Function::new([(6, ValType::I32)]);
    // Locals 1..=6 start from x.
    for l in 1..=6u32 {
        f.instruction(&I::LocalGet(0));
        f.instruction(&I::I32Const(rng.next() as i32));
        f.instruction(&I::I32Xor);
        f.instruction(&I::LocalSet(l));
    }
    let mut size = 0usize;
    while size < BODY_BYTES {
        let a = 1 + rng.below(6) as u32;
        let b = 1 + rng.below(6) as u32;
        let d = 1 + rng.below(6) as u32;
        let k = rng.next() as i32;
        let op = match rng.below(8) {
            0 => I::I32Add,
            1 => I::I32Sub,
            2 => I::I32Mul,
            3 => I::I32Xor,
            4 => I::I32Or,
            5 => I::I32Rotl,
            6 => I::I32ShrU,
            _ => I::I32And,
        };
        if rng.below(16) == 0 {
            // if (a & 1) { d = d + k } else { d = d ^ b }
            f.instruction(&I::LocalGet(a));
            f.instruction(&I::I32Const(1));
            f.instruction(&I::I32And);
            f.instruction(&I::If(BlockType::Empty));
            f.instruction(&I::LocalGet(d));
            f.instruction(&I::I32Const(k));
            f.instruction(&I::I32Add);
            f.instruction(&I::LocalSet(d));
            f.instruction(&I::Else);
            f.instruction(&I::LocalGet(d));
            f.instruction(&I::LocalGet(b));
            f.instruction(&I::I32Xor);
            f.instruction(&I::LocalSet(d));
            f.instruction(&I::End);
            size += 24;
        } else {
            // d = (a op b) + k
            f.instruction(&I::LocalGet(a));
            f.instruction(&I::LocalGet(b));
            f.instruction(&op);
            f.instruction(&I::I32Const(k));
            f.instruction(&I::I32Add);
            f.instruction(&I::LocalSet(d));
            size += 12;
        }
    }
    f.instruction(&I::LocalGet(1));
    for l in 2..=6u32 {
        f.instruction(&I::LocalGet(l));
        f.instruction(&I::I32Xor);
    }
    f.instruction(&I::End);
    f
}

fn core_module(mib: usize) -> Vec<u8> {
    let count = (mib << 20) / BODY_BYTES;
    let mut types = TypeSection::new();
    types.ty().function([ValType::I32, ValType::I32], [ValType::I32]); // 0: add, work
    types.ty().function([ValType::I32], [ValType::I32]); // 1: fillers

    let mut funcs = FunctionSection::new();
    funcs.function(0); // 0: add
    funcs.function(0); // 1: work
    for _ in 0..count {
        funcs.function(1);
    }

    let mut tables = TableSection::new();
    tables.table(TableType {
        element_type: RefType::FUNCREF,
        table64: false,
        minimum: count as u64,
        maximum: Some(count as u64),
        shared: false,
    });
    let mut mems = MemorySection::new();
    mems.memory(MemoryType { minimum: 1, maximum: None, memory64: false, shared: false, page_size_log2: None });

    let mut exports = ExportSection::new();
    exports.export("add", ExportKind::Func, 0);
    exports.export("work", ExportKind::Func, 1);
    exports.export("memory", ExportKind::Memory, 0);

    let mut elems = ElementSection::new();
    let indices: Vec<u32> = (2..2 + count as u32).collect();
    elems.active(Some(0), &ConstExpr::i32_const(0), Elements::Functions(indices.into()));

    let mut code = CodeSection::new();
    let mut add = Function::new([]);
    add.instruction(&I::LocalGet(0));
    add.instruction(&I::LocalGet(1));
    add.instruction(&I::I32Add);
    add.instruction(&I::End);
    code.function(&add);
    let mut work = Function::new([]);
    work.instruction(&I::LocalGet(1));
    work.instruction(&I::LocalGet(0));
    work.instruction(&I::I32Const(count as i32));
    work.instruction(&I::I32RemU);
    work.instruction(&I::CallIndirect { type_index: 1, table_index: 0 });
    work.instruction(&I::End);
    code.function(&work);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..count {
        code.function(&filler(&mut rng));
    }

    let mut m = Module::new();
    m.section(&types);
    m.section(&funcs);
    m.section(&tables);
    m.section(&mems);
    m.section(&exports);
    m.section(&elems);
    m.section(&code);
    m.finish()
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let out = args.next().context("usage: bigcomp OUT.wasm [MIB]")?;
    let mib: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(20);

    let mut module = core_module(mib);
    let mut resolve = wit_parser::Resolve::default();
    let pkg = resolve.push_str("big.wit", WIT)?;
    let world = resolve.select_world(&[pkg], Some("big"))?;
    wit_component::embed_component_metadata(&mut module, &resolve, world, wit_component::StringEncoding::UTF8)?;
    let component = wit_component::ComponentEncoder::default().module(&module)?.validate(true).encode()?;
    std::fs::write(&out, &component).with_context(|| format!("writing {out}"))?;
    eprintln!("{out}: {} bytes ({} MiB of generated code)", component.len(), mib);
    Ok(())
}
