//! The test command in Rust (`wasm32-wasip2`: a component exporting `wasi:cli/run`): argv[1]
//! names what to do, like the C one (tests/guests/c-cmd), through Rust's std.

use std::io::{Read, Write};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let what = args.get(1).map(String::as_str).unwrap_or("");
    let code = match what {
        "" => {
            println!("hello from Rust");
            0
        }
        "echo" => {
            println!("{}", args[2..].join(" "));
            0
        }
        "argv0" => {
            println!("{}", args[0]);
            0
        }
        "cat" => {
            let mut input = Vec::new();
            std::io::stdin().read_to_end(&mut input).expect("stdin");
            std::io::stdout().write_all(&input).expect("stdout");
            0
        }
        "err" if args.len() > 2 => {
            eprintln!("{}", args[2]);
            3
        }
        "exit" if args.len() > 2 => std::process::exit(args[2].parse().unwrap_or(1)),
        "read" if args.len() > 2 => match std::fs::read(&args[2]) {
            Ok(bytes) => {
                std::io::stdout().write_all(&bytes).expect("stdout");
                0
            }
            Err(e) => {
                eprintln!("{}: {e}", args[2]);
                2
            }
        },
        "write" if args.len() > 3 => match std::fs::write(&args[2], &args[3]) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("{}: {e}", args[2]);
                2
            }
        },
        "env" if args.len() > 2 => match std::env::var(&args[2]) {
            Ok(v) => {
                println!("{v}");
                0
            }
            Err(_) => {
                println!("(unset)");
                1
            }
        },
        "connect" if args.len() > 2 => match std::net::TcpStream::connect(&args[2]) {
            Ok(_) => {
                println!("connected");
                0
            }
            Err(e) => {
                eprintln!("connect {}: {e}", args[2]);
                2
            }
        },
        "panic" => panic!("the command panicked"),
        other => {
            eprintln!("unknown command: {other}");
            64
        }
    };
    std::process::exit(code);
}
