//! `cargo xtask size`: the agent's static memory and the firmware image.
//!
//! Prints `size_of` of every piece of the agent (from
//! [`bmclink_core::sizes::SIZES`], on this host and on the Cortex-M4F
//! target, read back from the firmware ELF), builds `firmware/` for
//! `thumbv7em-none-eabihf` with its release profile (`opt-level = "z"`, LTO,
//! one codegen unit, `panic = "abort"`) and reports its `.text`, `.rodata`,
//! `.data` and `.bss` from the ELF section headers. Exits non-zero when a
//! budget is exceeded (see [`Budgets`]).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use bmclink_core::sizes::SIZES;

/// The budgets of issue 8 that this command checks.
pub struct Budgets;

impl Budgets {
    /// `Agent` + `AgentBuffers`, TLS read buffer included.
    pub const AGENT_STATE: usize = 48 * 1024;
    /// Flash of the firmware image: everything loaded from flash.
    pub const FLASH: u64 = 256 * 1024;
}

/// One section of an ELF file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// Its name, from the section-name string table.
    pub name: String,
    /// `SHF_ALLOC` etc.
    pub flags: u64,
    /// `SHT_NOBITS` (`.bss`) occupies no file bytes.
    pub kind: u32,
    /// Offset of its bytes in the file.
    pub offset: u64,
    /// Its size in bytes.
    pub size: u64,
}

/// Section type of `.bss`-like sections.
const SHT_NOBITS: u32 = 8;
/// Section flag: occupies memory at run time.
const SHF_ALLOC: u64 = 2;

/// The section headers of a little-endian ELF32 or ELF64 file; `None` when
/// `elf` is not one or is truncated.
pub fn sections(elf: &[u8]) -> Option<Vec<Section>> {
    if elf.get(..4)? != b"\x7fELF" || *elf.get(5)? != 1 {
        return None;
    }
    let wide = match elf.get(4)? {
        1 => false,
        2 => true,
        _ => return None,
    };
    let u16_at = |at: usize| Some(u16::from_le_bytes(elf.get(at..at + 2)?.try_into().ok()?));
    let u32_at = |at: usize| Some(u32::from_le_bytes(elf.get(at..at + 4)?.try_into().ok()?));
    let u64_at = |at: usize| Some(u64::from_le_bytes(elf.get(at..at + 8)?.try_into().ok()?));
    let word = |at: usize| -> Option<u64> {
        if wide {
            u64_at(at)
        } else {
            u32_at(at).map(u64::from)
        }
    };
    let (shoff, shentsize, shnum, shstrndx) = if wide {
        (u64_at(0x28)?, u16_at(0x3a)?, u16_at(0x3c)?, u16_at(0x3e)?)
    } else {
        (
            u64::from(u32_at(0x20)?),
            u16_at(0x2e)?,
            u16_at(0x30)?,
            u16_at(0x32)?,
        )
    };
    let header = |i: u16| -> Option<(u32, u32, u64, u64, u64)> {
        let at = usize::try_from(shoff).ok()? + usize::from(i) * usize::from(shentsize);
        // sh_name, sh_type, sh_flags, sh_offset, sh_size
        Some(if wide {
            (
                u32_at(at)?,
                u32_at(at + 4)?,
                word(at + 8)?,
                word(at + 0x18)?,
                word(at + 0x20)?,
            )
        } else {
            (
                u32_at(at)?,
                u32_at(at + 4)?,
                word(at + 8)?,
                word(at + 0x10)?,
                word(at + 0x14)?,
            )
        })
    };
    let (_, _, _, names_at, names_len) = header(shstrndx)?;
    let names =
        elf.get(usize::try_from(names_at).ok()?..usize::try_from(names_at + names_len).ok()?)?;
    (0..shnum)
        .map(|i| {
            let (name, kind, flags, offset, size) = header(i)?;
            let name = names.get(usize::try_from(name).ok()?..)?;
            let end = name.iter().position(|b| *b == 0)?;
            Some(Section {
                name: String::from_utf8_lossy(&name[..end]).into_owned(),
                flags,
                kind,
                offset,
                size,
            })
        })
        .collect()
}

/// What an image costs, by section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Image {
    /// Code (`.text` and the vector table).
    pub text: u64,
    /// Constants (`.rodata`).
    pub rodata: u64,
    /// Initialised data: in RAM, with its initial image in flash.
    pub data: u64,
    /// Zeroed data: in RAM only.
    pub bss: u64,
}

impl Image {
    /// Sums the allocated sections of `sections` by kind.
    pub fn of(sections: &[Section]) -> Image {
        let mut image = Image::default();
        for s in sections.iter().filter(|s| s.flags & SHF_ALLOC != 0) {
            let slot = if s.kind == SHT_NOBITS {
                &mut image.bss
            } else if s.name.starts_with(".data") {
                &mut image.data
            } else if s.name.starts_with(".rodata") {
                &mut image.rodata
            } else {
                &mut image.text
            };
            *slot += s.size;
        }
        image
    }

    /// Bytes stored in flash: code, constants and the `.data` image.
    pub fn flash(&self) -> u64 {
        self.text + self.rodata + self.data
    }

    /// Bytes of static RAM (the stack comes on top).
    pub fn ram(&self) -> u64 {
        self.data + self.bss
    }
}

/// Path of the firmware crate.
fn firmware_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../firmware")
}

/// Builds the firmware image and returns the path of its ELF: the image
/// `cargo xtask qemu` boots (the bootstrap facts built in), so the size is
/// that of the booted image; `bench` adds the on-target figures (its own
/// target directory, so the two builds do not undo each other). With `cm4`,
/// the firmware's P-256 backend is p256-cm4 (its `p256-cm4` feature)
/// instead of RustCrypto.
pub fn build_firmware(bench: bool, cm4: bool) -> Result<PathBuf, String> {
    let dir = firmware_dir();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let backend = if cm4 { "p256-cm4" } else { "RustCrypto" };
    println!(
        "==> building firmware/ (release: opt-level z (P-256 crates 3), LTO, panic abort{}; P-256: {backend})",
        if bench { ", feature bench" } else { "" }
    );
    let sub = match (bench, cm4) {
        (false, false) => "target",
        (true, false) => "target/bench",
        (false, true) => "target/cm4",
        (true, true) => "target/bench-cm4",
    };
    let target_dir = dir.join(sub);
    let mut features = Vec::new();
    if bench {
        features.push("bench");
    }
    if cm4 {
        features.push("p256-cm4");
    }
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--release"]);
    if !features.is_empty() {
        cmd.args(["--features", &features.join(",")]);
    }
    let status = cmd
        .current_dir(&dir)
        // The firmware's own profile and target, not the outer build's.
        .env("CARGO_TARGET_DIR", &target_dir)
        .env_remove("RUSTFLAGS")
        .envs(crate::qemu::bootstrap_env())
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(format!("firmware build failed ({status})"));
    }
    Ok(target_dir.join("thumbv7em-none-eabihf/release/bmclink-firmware"))
}

/// `size_of` of every piece on the target, from the `.bmclink_sizes` section.
fn target_sizes(elf: &[u8], sections: &[Section]) -> Option<Vec<u32>> {
    let s = sections.iter().find(|s| s.name == ".bmclink_sizes")?;
    let at = usize::try_from(s.offset).ok()?;
    let bytes = elf.get(at..at + usize::try_from(s.size).ok()?)?;
    Some(
        bytes
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    )
}

pub fn main(args: &[String]) -> ExitCode {
    let elf_path = match build_firmware(false, args.iter().any(|a| a == "--p256-cm4")) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("xtask size: {e}");
            return ExitCode::FAILURE;
        }
    };
    let elf = match std::fs::read(&elf_path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("xtask size: cannot read {}: {e}", elf_path.display());
            return ExitCode::FAILURE;
        }
    };
    let Some(sections) = sections(&elf) else {
        eprintln!("xtask size: {} is not an ELF file", elf_path.display());
        return ExitCode::FAILURE;
    };
    let target = target_sizes(&elf, &sections).unwrap_or_default();
    let image = Image::of(&sections);
    let report = render(&target, &image);
    println!("\n{report}");
    if args.iter().any(|a| a == "--write") {
        let path = crate::bench::report_path();
        if let Err(e) = crate::bench::write_section(&path, "size", &report) {
            eprintln!("xtask size: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        println!("wrote {}", path.display());
    }
    let state = target
        .first()
        .map_or(SIZES[0].bytes, |b| *b as usize)
        .max(SIZES[0].bytes);
    let mut ok = true;
    println!();
    ok &= budget(
        "agent state (larger of both targets)",
        state as u64,
        Budgets::AGENT_STATE as u64,
    );
    ok &= budget("firmware flash", image.flash(), Budgets::FLASH);
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The memory tables as Markdown: `size_of` per piece on both targets, and
/// the firmware image by section.
fn render(target: &[u32], image: &Image) -> String {
    let mut out = String::from(
        "Agent memory, `size_of` in bytes (x86_64 host; thumbv7em from the firmware ELF):\n\n\
         | piece | within | x86_64 | thumbv7em |\n|---|---|---:|---:|\n",
    );
    for (i, s) in SIZES.iter().enumerate() {
        let t = target.get(i).map_or("?".into(), |b| b.to_string());
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            s.name, s.within, s.bytes, t
        ));
    }
    out.push_str(&format!(
        "\nFirmware image `firmware/` as booted by `cargo xtask qemu` (thumbv7em-none-eabihf, \
         opt-level z with the P-256 crates at 3, fat LTO, 1 codegen unit, panic abort; \
         defmt log, LAN9118 driver), bytes:\n\n\
         | .text | .rodata | .data | .bss | flash (.text+.rodata+.data) | static RAM (.data+.bss) |\n\
         |---:|---:|---:|---:|---:|---:|\n\
         | {} | {} | {} | {} | {} | {} |\n",
        image.text,
        image.rodata,
        image.data,
        image.bss,
        image.flash(),
        image.ram()
    ));
    out
}

/// Prints one budget line; false when `used` exceeds `limit`.
fn budget(what: &str, used: u64, limit: u64) -> bool {
    let ok = used <= limit;
    println!(
        "budget {what}: {used} of {limit} bytes ({:.0}%) {}",
        used as f64 * 100.0 / limit as f64,
        if ok { "ok" } else { "EXCEEDED" }
    );
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_executable_has_text_and_named_sections() {
        let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let sections = sections(&exe).unwrap();
        assert!(sections.iter().any(|s| s.name == ".text" && s.size > 0));
        let image = Image::of(&sections);
        assert!(image.text > 0);
        assert!(image.bss > 0);
    }

    #[test]
    fn truncated_or_foreign_files_are_not_elf() {
        let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert_eq!(sections(&exe[..0x30]), None);
        assert_eq!(sections(b"MZ\x90\x00 not an elf"), None);
    }
}
