//! `cargo xtask bench`: measurements (placeholder).

use std::process::ExitCode;

pub fn main(_args: &[String]) -> ExitCode {
    ExitCode::SUCCESS
}
