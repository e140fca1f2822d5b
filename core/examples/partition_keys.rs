//! Prints the partition oncelog's default partitioner gives each key, and the key's
//! murmur2, so another implementation (Kafka's) can be compared with it.
//!
//! ```text
//! printf '12 3231\n7 \n' | cargo run -p oncelog --example partition_keys
//! 0 -973932308
//! 2 275646681
//! ```
//!
//! Each line of standard input is `<partitions> <hex key>`: a partition count of at
//! least 1 and the key's bytes in hexadecimal (either case; nothing, or nothing after
//! the count, is the empty key). Each line of output is `<partition> <murmur2>`: the
//! partition from [`oncelog::partitioner::partition_for_key`] and
//! [`oncelog::partitioner::murmur2`] as a signed 32-bit integer (Java's `int`). Blank
//! input lines are an error, so that output line N always answers input line N.
//!
//! `tests/python/test_partitioner_matches_kafka.py` feeds it thousands of keys and
//! compares every answer with kafka-python's partitioner.

use std::error::Error;
use std::io::{self, BufRead, BufWriter, Write};
use std::num::NonZeroU32;
use std::process::ExitCode;

use oncelog::partitioner::{murmur2, partition_for_key};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("partition_keys: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn Error>> {
    let stdin = io::stdin().lock();
    let mut out = BufWriter::new(io::stdout().lock());
    let mut key = Vec::new();
    for (index, line) in stdin.lines().enumerate() {
        let line = line?;
        let number = index + 1;
        let partitions =
            parse_line(&line, &mut key).map_err(|e| format!("line {number} ({line:?}): {e}"))?;
        writeln!(
            out,
            "{} {}",
            partition_for_key(&key, partitions),
            murmur2(&key)
        )?;
    }
    out.flush()?;
    Ok(())
}

/// Parses `<partitions> <hex key>` into the count and `key` (reused between lines).
fn parse_line(line: &str, key: &mut Vec<u8>) -> Result<NonZeroU32, String> {
    let mut fields = line.split_ascii_whitespace();
    let count = fields
        .next()
        .ok_or("expected `<partitions> <hex key>`, got a blank line")?;
    let hex = fields.next().unwrap_or("");
    if fields.next().is_some() {
        return Err("expected two fields, `<partitions> <hex key>`".into());
    }
    let count: u32 = count
        .parse()
        .map_err(|e| format!("partition count {count:?}: {e}"))?;
    let partitions =
        NonZeroU32::new(count).ok_or("the partition count must be at least 1, got 0")?;
    decode_hex(hex, key)?;
    Ok(partitions)
}

/// Decodes hexadecimal `hex` into `out` (cleared first).
fn decode_hex(hex: &str, out: &mut Vec<u8>) -> Result<(), String> {
    out.clear();
    let digits = hex.as_bytes();
    if digits.len() % 2 != 0 {
        return Err(format!(
            "hex key has an odd number of digits ({})",
            digits.len()
        ));
    }
    for pair in digits.chunks_exact(2) {
        let high = hex_value(pair[0])?;
        let low = hex_value(pair[1])?;
        out.push(high << 4 | low);
    }
    Ok(())
}

fn hex_value(digit: u8) -> Result<u8, String> {
    match digit {
        b'0'..=b'9' => Ok(digit - b'0'),
        b'a'..=b'f' => Ok(digit - b'a' + 10),
        b'A'..=b'F' => Ok(digit - b'A' + 10),
        _ => Err(format!("{:?} is not a hex digit", char::from(digit))),
    }
}
