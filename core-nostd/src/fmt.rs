//! Logging shim in the style of smoltcp's and embedded-tls's `fmt.rs`.
//!
//! With feature `log` the macros forward to the `log` crate, with `defmt` to
//! `defmt`, and with neither they compile to nothing (arguments are still
//! type-checked so a disabled build cannot rot).
#![allow(unused_macros)]

#[cfg(all(feature = "log", feature = "defmt"))]
compile_error!("features `log` and `defmt` are mutually exclusive");

macro_rules! net_log {
    (trace, $($arg:expr),* $(,)?) => { net_log!(@emit trace, $($arg),*) };
    (debug, $($arg:expr),* $(,)?) => { net_log!(@emit debug, $($arg),*) };
    (info, $($arg:expr),* $(,)?) => { net_log!(@emit info, $($arg),*) };
    (warn, $($arg:expr),* $(,)?) => { net_log!(@emit warn, $($arg),*) };
    (error, $($arg:expr),* $(,)?) => { net_log!(@emit error, $($arg),*) };
    (@emit $level:ident, $($arg:expr),*) => {{
        #[cfg(feature = "log")]
        { ::log::$level!($($arg),*); }
        #[cfg(feature = "defmt")]
        { ::defmt::$level!($($arg),*); }
        #[cfg(not(any(feature = "log", feature = "defmt")))]
        { let _ = ($( & $arg ),*); }
    }};
}

macro_rules! trace { ($($arg:expr),* $(,)?) => { net_log!(trace, $($arg),*) }; }
macro_rules! debug { ($($arg:expr),* $(,)?) => { net_log!(debug, $($arg),*) }; }
macro_rules! info { ($($arg:expr),* $(,)?) => { net_log!(info, $($arg),*) }; }
macro_rules! warn { ($($arg:expr),* $(,)?) => { net_log!(warn, $($arg),*) }; }
macro_rules! error { ($($arg:expr),* $(,)?) => { net_log!(error, $($arg),*) }; }
