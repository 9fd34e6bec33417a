//! # bmclink-linux
//!
//! The Linux shim around the `no_std` core: the platform pieces
//! ([`frames`], [`clock`], [`store`], [`hostnet`], [`bootstrap`], [`audit`],
//! [`pcap`], [`private_file`]) composed into one [`platform::LinuxPlatform`], plus what the
//! `bmclink` binary needs around it: [`config`], [`hosts`] (P10's managed
//! block), [`status`] and [`session`] (what a running agent shows),
//! [`install`], the [`cli`] and its [`commands`].

pub mod audit;
pub mod bootstrap;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod discover;
pub mod frames;
pub mod hostnet;
pub mod hosts;
pub mod install;
pub mod ipmi;
pub mod journal;
pub mod pcap;
pub mod platform;
pub mod private_file;
pub mod session;
pub mod smbios;
pub mod status;
pub mod store;
pub mod time;
