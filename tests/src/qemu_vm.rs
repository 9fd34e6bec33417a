//! A throwaway Linux VM for tests against real kernel drivers: Debian's
//! kernel (`linux-image-amd64`) and a few of its modules, a static busybox
//! and one program of ours with its shared libraries, in an initramfs built
//! here (cpio "newc"), booted by `qemu-system-x86_64` with a serial console
//! on stdout and no disk, no network and no systemd: a tiny `/init` runs the
//! test's commands and powers off.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A cpio archive in the "newc" format the kernel unpacks as an initramfs.
#[derive(Debug, Default)]
pub struct Newc {
    out: Vec<u8>,
    ino: u32,
}

fn pad4(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

impl Newc {
    fn entry(&mut self, name: &str, mode: u32, data: &[u8]) {
        self.ino += 1;
        let name = name.trim_start_matches('/');
        let fields = [
            self.ino,
            mode,
            0, // uid
            0, // gid
            1, // nlink
            0, // mtime
            data.len() as u32,
            0,
            0,
            0,
            0,
            name.len() as u32 + 1,
            0, // check
        ];
        self.out.extend_from_slice(b"070701");
        for f in fields {
            self.out.extend_from_slice(format!("{f:08X}").as_bytes());
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        pad4(&mut self.out);
        self.out.extend_from_slice(data);
        pad4(&mut self.out);
    }

    /// A directory (parents must come first).
    pub fn dir(&mut self, path: &str) {
        self.entry(path, 0o040755, &[]);
    }

    /// A regular file with permission bits `perm`.
    pub fn file(&mut self, path: &str, perm: u32, data: &[u8]) {
        self.entry(path, 0o100000 | perm, data);
    }

    /// A symbolic link at `path` to `target`.
    pub fn symlink(&mut self, path: &str, target: &str) {
        self.entry(path, 0o120777, target.as_bytes());
    }

    /// The archive, with its trailer.
    pub fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, &[]);
        self.out
    }
}

/// What booting the VM needs from the host, found or the reason it is missing.
#[derive(Debug, Clone)]
pub struct VmHost {
    /// `qemu-system-x86_64`.
    pub qemu: PathBuf,
    /// The kernel image.
    pub kernel: PathBuf,
    /// `/lib/modules/VERSION` of that kernel.
    pub modules: PathBuf,
    /// A statically linked busybox.
    pub busybox: PathBuf,
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

impl VmHost {
    /// Finds QEMU, the newest `/boot/vmlinuz-*` with its modules and busybox;
    /// `Err` says what is missing and which package brings it.
    pub fn find() -> Result<VmHost, String> {
        if cfg!(not(target_arch = "x86_64")) {
            return Err("the VM tests run on x86-64 hosts only".into());
        }
        let qemu = which("qemu-system-x86_64")
            .ok_or("qemu-system-x86_64 is missing (apt-get install qemu-system-x86)")?;
        let mut kernels: Vec<(String, PathBuf)> = fs::read_dir("/boot")
            .map_err(|e| format!("/boot: {e}"))?
            .filter_map(|e| {
                let p = e.ok()?.path();
                let v = p
                    .file_name()?
                    .to_str()?
                    .strip_prefix("vmlinuz-")?
                    .to_owned();
                Path::new("/lib/modules")
                    .join(&v)
                    .is_dir()
                    .then_some((v, p))
            })
            .collect();
        kernels.sort();
        let (version, kernel) = kernels.pop().ok_or(
            "no /boot/vmlinuz-* with its /lib/modules (apt-get install linux-image-amd64)",
        )?;
        fs::File::open(&kernel).map_err(|e| format!("{}: {e} (run as root)", kernel.display()))?;
        let busybox = ["/usr/bin/busybox", "/bin/busybox"]
            .iter()
            .map(PathBuf::from)
            .find(|p| is_static(p))
            .ok_or("no statically linked busybox (apt-get install busybox-static)")?;
        Ok(VmHost {
            qemu,
            kernel,
            modules: Path::new("/lib/modules").join(version),
            busybox,
        })
    }

    /// The module files for `names` and everything they depend on, in load
    /// order (dependencies first), from `modules.dep`.
    pub fn modules_for(&self, names: &[&str]) -> Result<Vec<PathBuf>, String> {
        let dep_file = self.modules.join("modules.dep");
        let deps =
            fs::read_to_string(&dep_file).map_err(|e| format!("{}: {e}", dep_file.display()))?;
        let table: Vec<(&str, Vec<&str>)> = deps
            .lines()
            .filter_map(|l| {
                let (m, d) = l.split_once(':')?;
                Some((m, d.split_whitespace().collect()))
            })
            .collect();
        let mut order: Vec<String> = Vec::new();
        for name in names {
            let (m, d) = table
                .iter()
                .find(|(m, _)| module_name(m) == *name)
                .ok_or_else(|| format!("module {name} is not in {}", dep_file.display()))?;
            // modules.dep lists the dependencies of dependencies too, the
            // deepest last.
            for dep in d.iter().rev().chain(std::iter::once(m)) {
                if !order.iter().any(|o| o == dep) {
                    order.push((*dep).to_owned());
                }
            }
        }
        Ok(order.into_iter().map(|m| self.modules.join(m)).collect())
    }
}

fn module_name(path: &str) -> &str {
    let file = path.rsplit('/').next().unwrap_or(path);
    file.split(".ko").next().unwrap_or(file)
}

fn is_static(path: &Path) -> bool {
    // A dynamically linked ELF has a PT_INTERP program header; look for the
    // interpreter's name instead of parsing headers.
    let Ok(data) = fs::read(path) else {
        return false;
    };
    data.starts_with(b"\x7fELF") && !data.windows(14).any(|w| w == b"/lib64/ld-linu")
}

/// A module file's bytes, decompressed when the kernel package ships it
/// compressed (`.ko.xz`, `.ko.zst`), so busybox's insmod can load it.
fn module_bytes(path: &Path) -> Result<Vec<u8>, String> {
    let tool = match path.extension().and_then(|e| e.to_str()) {
        Some("ko") => return fs::read(path).map_err(|e| format!("{}: {e}", path.display())),
        Some("xz") => "xz",
        Some("zst") => "zstd",
        Some("gz") => "gzip",
        _ => return Err(format!("{}: unknown module format", path.display())),
    };
    let out = Command::new(tool)
        .arg("-dc")
        .arg(path)
        .output()
        .map_err(|e| format!("{tool} -dc {}: {e}", path.display()))?;
    if !out.status.success() {
        return Err(format!("{tool} -dc {} failed", path.display()));
    }
    Ok(out.stdout)
}

/// The shared libraries `program` loads (from `ldd`), loader included.
fn shared_libs(program: &Path) -> Result<Vec<PathBuf>, String> {
    let out = Command::new("ldd")
        .arg(program)
        .output()
        .map_err(|e| format!("ldd: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if text.contains("not a dynamic executable") || text.contains("statically linked") {
        return Ok(Vec::new());
    }
    Ok(text
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let path = match l.split_once("=>") {
                Some((_, rest)) => rest.split_whitespace().next()?,
                None => l.split_whitespace().next()?,
            };
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect())
}

/// `program` without its debug sections (`objcopy --strip-debug`), or as it
/// is when objcopy is missing: a debug build is ~90 MB, stripped ~10 MB,
/// and the kernel unpacks every byte under emulation.
fn stripped(program: &Path) -> Result<Vec<u8>, String> {
    // One file per call: the tests of one binary build their VMs in parallel.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = std::env::temp_dir().join(format!(
        "bmclink-vm-strip-{}-{call}-{}",
        std::process::id(),
        program
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("bin")
    ));
    let ok = Command::new("objcopy")
        .arg("--strip-debug")
        .arg(program)
        .arg(&tmp)
        .status()
        .is_ok_and(|s| s.success());
    let data = if ok {
        fs::read(&tmp)
    } else {
        fs::read(program)
    };
    let _ = fs::remove_file(&tmp);
    data.map_err(|e| format!("{}: {e}", program.display()))
}

/// What goes into the initramfs.
#[derive(Debug, Clone)]
pub struct Initramfs<'a> {
    /// Kernel modules to load, by name (their dependencies come along).
    pub modules: &'a [&'a str],
    /// Our program, installed as `/bin/NAME`.
    pub program: &'a Path,
    /// The body of `/init` after the mounts and module loading (busybox sh).
    pub script: &'a str,
}

impl Initramfs<'_> {
    /// Builds the archive on `host`.
    pub fn build(&self, host: &VmHost) -> Result<Vec<u8>, String> {
        let mut a = Newc::default();
        for d in [
            "/bin", "/dev", "/proc", "/sys", "/lib", "/lib64", "/modules", "/tmp",
        ] {
            a.dir(d);
        }
        a.file(
            "/bin/busybox",
            0o755,
            &fs::read(&host.busybox).map_err(|e| e.to_string())?,
        );
        for applet in [
            "sh", "mount", "insmod", "echo", "cat", "ls", "sleep", "poweroff", "test", "ip",
            "mkdir", "grep", "kill",
        ] {
            a.symlink(&format!("/bin/{applet}"), "busybox");
        }
        let name = self
            .program
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or("the program has no file name")?;
        a.file(&format!("/bin/{name}"), 0o755, &stripped(self.program)?);
        let mut made: Vec<String> = vec!["/lib".into(), "/lib64".into()];
        for lib in shared_libs(self.program)? {
            let path = lib.to_str().ok_or("non-UTF-8 library path")?;
            let mut parents: Vec<&Path> = lib.ancestors().skip(1).collect();
            parents.reverse();
            for dir in parents
                .iter()
                .filter_map(|d| d.to_str())
                .filter(|d| *d != "/")
            {
                if !made.iter().any(|m| m == dir) {
                    a.dir(dir);
                    made.push(dir.to_owned());
                }
            }
            let data = fs::read(&lib).map_err(|e| format!("{}: {e}", lib.display()))?;
            a.file(path, 0o755, &data);
        }
        let mut load = String::new();
        for m in host.modules_for(self.modules)? {
            let file = format!(
                "/modules/{}.ko",
                module_name(m.to_str().ok_or("non-UTF-8 module path")?)
            );
            a.file(&file, 0o644, &module_bytes(&m)?);
            load.push_str(&format!(
                "insmod {file} || echo \"@@insmod-failed {file}\"\n"
            ));
        }
        let init = format!(
            "#!/bin/sh\n\
             mount -t proc proc /proc\n\
             mount -t sysfs sys /sys\n\
             mount -t devtmpfs dev /dev\n\
             {load}\
             {}\n\
             echo @@done\n\
             poweroff -f\n",
            self.script
        );
        a.file("/init", 0o755, init.as_bytes());
        Ok(a.finish())
    }
}

/// How a VM run ended.
#[derive(Debug, Clone)]
pub struct VmRun {
    /// Everything on the serial console.
    pub console: String,
    /// From starting QEMU to its exit.
    pub elapsed: Duration,
    /// QEMU exited by itself (false: killed at the deadline).
    pub exited: bool,
}

/// Boots `host`'s kernel with `initrd` and `extra` QEMU arguments under TCG
/// (no KVM, as in CI) on one virtual CPU, and waits for it to power off,
/// killing it after `deadline`.
pub fn boot(
    host: &VmHost,
    initrd: &Path,
    extra: &[String],
    deadline: Duration,
) -> Result<VmRun, String> {
    boot_in(None, host, initrd, extra, deadline)
}

/// [`boot`] with QEMU inside the network namespace `netns` (`ip netns exec`),
/// so that `-nic tap,ifname=...` attaches to a TAP device made there.
pub fn boot_in(
    netns: Option<&str>,
    host: &VmHost,
    initrd: &Path,
    extra: &[String],
    deadline: Duration,
) -> Result<VmRun, String> {
    let start = Instant::now();
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns]).arg(&host.qemu);
            c
        }
        None => Command::new(&host.qemu),
    };
    let mut child = cmd
        .args(["-machine", "pc", "-accel", "tcg", "-m", "256M", "-smp", "1"])
        .args([
            "-nodefaults",
            "-nographic",
            "-no-reboot",
            "-serial",
            "stdio",
        ])
        .arg("-kernel")
        .arg(&host.kernel)
        .arg("-initrd")
        .arg(initrd)
        .args(["-append", "console=ttyS0 quiet panic=-1 rdinit=/init"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{}: {e}", host.qemu.display()))?;
    let mut stdout = child.stdout.take().ok_or("no stdout")?;
    let reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = stdout.read_to_end(&mut s);
        s
    });
    let mut exited = false;
    while start.elapsed() < deadline {
        if child.try_wait().map_err(|e| e.to_string())?.is_some() {
            exited = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if !exited {
        let _ = child.kill();
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    let elapsed = start.elapsed();
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    let console = String::from_utf8_lossy(&reader.join().unwrap_or_default()).into_owned();
    if exited && !status.success() {
        return Err(format!("QEMU failed ({status}): {err}\n{console}"));
    }
    Ok(VmRun {
        console,
        elapsed,
        exited,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newc_headers_follow_the_format() {
        let mut a = Newc::default();
        a.file("/init", 0o755, b"#!/bin/sh\n");
        let out = a.finish();
        // 110-byte header, "init\0" padded to a multiple of 4, 10 data bytes padded.
        assert_eq!(&out[..6], b"070701");
        assert_eq!(&out[14..22], b"000081ED"); // mode 0100755
        assert_eq!(&out[54..62], b"0000000A"); // filesize
        assert_eq!(&out[94..102], b"00000005"); // namesize with NUL
        assert_eq!(&out[110..115], b"init\0");
        assert_eq!(&out[116..126], b"#!/bin/sh\n");
        assert!(out.windows(10).any(|w| w == b"TRAILER!!!"));
        assert_eq!(out.len() % 4, 0);
    }

    #[test]
    fn module_names_drop_directory_and_suffix() {
        assert_eq!(
            module_name("kernel/drivers/char/ipmi/ipmi_si.ko"),
            "ipmi_si"
        );
        assert_eq!(
            module_name("kernel/drivers/char/ipmi/ipmi_si.ko.xz"),
            "ipmi_si"
        );
    }
}
