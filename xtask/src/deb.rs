//! `cargo xtask deb [--no-check]`: the Debian package, built with cargo-deb
//! from `[package.metadata.deb]` in shim-linux/Cargo.toml, then checked as
//! CI checks it:
//!
//! 1. the release `bmclink` is built, and its man page (section 8) and its
//!    bash, zsh and fish completions are generated from it into
//!    `target/deb-assets/` (the shipped binary documents itself);
//! 2. `cargo deb --no-build` packs it (cargo-deb is installed with
//!    `cargo install cargo-deb --locked` when missing, saying so in one line);
//! 3. unless `--no-check`: every file of the package is listed with its mode
//!    and owner and compared with the expected list (nothing missing, nothing
//!    more); the tree is unpacked with `dpkg-deb -x` into a scratch root and
//!    the files are compared with their sources; the maintainer scripts run
//!    against that root with `DPKG_ROOT` set, as dpkg runs them for `--root`
//!    (postinst configure twice, prerm remove, postrm remove and purge), and
//!    what each must leave is checked; `lintian` must report no error.
//!
//! Prints how long each part took.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use bmclink_core::platform::Record;

/// The package's name.
const PACKAGE: &str = "bmclink";

/// Every file the package holds: path, mode. The journal catalog is added
/// when `shim-linux/packaging/bmclink.catalog` exists.
const FILES: &[(&str, &str)] = &[
    ("usr/sbin/bmclink", "-rwxr-xr-x"),
    ("lib/systemd/system/bmclink.service", "-rw-r--r--"),
    ("lib/udev/rules.d/70-bmclink.rules", "-rw-r--r--"),
    ("usr/share/man/man8/bmclink.8.gz", "-rw-r--r--"),
    (
        "usr/share/bash-completion/completions/bmclink",
        "-rw-r--r--",
    ),
    ("usr/share/zsh/vendor-completions/_bmclink", "-rw-r--r--"),
    (
        "usr/share/fish/vendor_completions.d/bmclink.fish",
        "-rw-r--r--",
    ),
    ("usr/share/lintian/overrides/bmclink", "-rw-r--r--"),
    ("usr/share/doc/bmclink/copyright", "-rw-r--r--"),
    ("usr/share/doc/bmclink/changelog.Debian.gz", "-rw-r--r--"),
];

/// Where the catalog goes (systemd's catalog directory).
const CATALOG: &str = "usr/lib/systemd/catalog/bmclink.catalog";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".."))
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"))
}

fn packaging() -> PathBuf {
    workspace().join("shim-linux/packaging")
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// Runs `cmd`, echoing it; its stdout, or the sentence why it failed.
fn run(cmd: &mut Command) -> Result<String, String> {
    let shown = format!("{cmd:?}").replace('"', "");
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{shown} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stdout).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub fn main(args: &[String]) -> ExitCode {
    let mut check = true;
    for a in args {
        match a.as_str() {
            "--no-check" => check = false,
            other => {
                eprintln!(
                    "xtask deb: unknown argument `{other}` (usage: cargo xtask deb [--no-check])"
                );
                return ExitCode::from(2);
            }
        }
    }
    match build_and_check(check) {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("xtask deb: {why}");
            ExitCode::FAILURE
        }
    }
}

fn build_and_check(check: bool) -> Result<(), String> {
    let started = Instant::now();
    ensure_cargo_deb()?;
    let t = Instant::now();
    println!("==> deb: release build of bmclink");
    run(Command::new(cargo()).current_dir(workspace()).args([
        "build",
        "--release",
        "-p",
        "bmclink-linux",
        "--bin",
        "bmclink",
    ]))?;
    let build = t.elapsed();
    let t = Instant::now();
    let binary = target_dir().join("release/bmclink");
    stage_assets(&binary)?;
    let out_dir = target_dir().join("debian");
    let mut args = vec![
        "deb",
        "-p",
        "bmclink-linux",
        "--no-build",
        "--strip",
        "--quiet",
        "--output",
        out_dir.to_str().unwrap_or("target/debian"),
    ];
    if !packaging().join("bmclink.catalog").exists() {
        args.extend(["--variant", "no-catalog"]);
        println!(
            "==> deb: no shim-linux/packaging/bmclink.catalog in this tree: the package has no journal catalog (variant no-catalog)"
        );
    }
    println!("==> deb: cargo {}", args.join(" "));
    let printed = run(Command::new(cargo()).current_dir(workspace()).args(&args))?;
    let deb = printed
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.ends_with(".deb"))
        .map(PathBuf::from)
        .ok_or_else(|| format!("cargo deb printed no .deb path: {printed}"))?;
    let pack = t.elapsed();
    println!("wrote {}", deb.display());
    if !check {
        println!(
            "xtask deb: built in {:.1} s (release build {:.1} s, assets and packing {:.1} s)",
            started.elapsed().as_secs_f64(),
            build.as_secs_f64(),
            pack.as_secs_f64()
        );
        return Ok(());
    }
    let t = Instant::now();
    let scratch = target_dir().join("deb-check");
    let _ = fs::remove_dir_all(&scratch);
    fs::create_dir_all(&scratch)
        .map_err(|e| format!("cannot create {}: {e}", scratch.display()))?;
    check_listing(&deb)?;
    let root = scratch.join("root");
    check_unpacked(&deb, &root)?;
    check_scripts(&deb, &scratch.join("DEBIAN"), &root)?;
    check_chroot(&deb, &scratch.join("DEBIAN"), &scratch.join("chroot"))?;
    let checks = t.elapsed();
    let t = Instant::now();
    lintian(&deb)?;
    let lint = t.elapsed();
    println!(
        "xtask deb: {} built and checked in {:.1} s (release build {:.1} s, assets and packing {:.1} s, \
         file and script checks {:.1} s, lintian {:.1} s)",
        deb.display(),
        started.elapsed().as_secs_f64(),
        build.as_secs_f64(),
        pack.as_secs_f64(),
        checks.as_secs_f64(),
        lint.as_secs_f64()
    );
    Ok(())
}

/// cargo-deb, installed when `cargo deb` is missing.
fn ensure_cargo_deb() -> Result<(), String> {
    let present = Command::new(cargo())
        .args(["deb", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if present {
        return Ok(());
    }
    println!("==> deb: cargo-deb is missing: cargo install cargo-deb --locked");
    run(Command::new(cargo()).args(["install", "cargo-deb", "--locked", "--quiet"])).map(|_| ())
}

/// The man page and the completions, generated by the binary itself.
fn stage_assets(binary: &Path) -> Result<(), String> {
    let dir = target_dir().join("deb-assets");
    fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let write = |name: &str, data: &[u8]| {
        let p = dir.join(name);
        fs::write(&p, data).map_err(|e| format!("cannot write {}: {e}", p.display()))
    };
    let man = run(Command::new(binary).arg("man"))?;
    write("bmclink.8", man.as_bytes())?;
    // gzip -9n: maximum compression and no name or time stamp (Debian
    // policy 12.1, lintian's manpage checks; reproducible).
    let gz = Command::new("gzip")
        .args(["-9n", "-c"])
        .arg(dir.join("bmclink.8"))
        .output()
        .map_err(|e| format!("cannot run gzip: {e}"))?;
    if !gz.status.success() {
        return Err(format!("gzip failed ({})", gz.status));
    }
    write("bmclink.8.gz", &gz.stdout)?;
    for (shell, name) in [
        ("bash", "bmclink.bash"),
        ("zsh", "_bmclink"),
        ("fish", "bmclink.fish"),
    ] {
        let text = run(Command::new(binary).args(["completions", shell]))?;
        write(name, text.as_bytes())?;
    }
    Ok(())
}

/// The files the package must hold, with their modes.
fn expected_files() -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = FILES
        .iter()
        .map(|(p, m)| ((*p).to_owned(), (*m).to_owned()))
        .collect();
    if packaging().join("bmclink.catalog").exists() {
        files.push((CATALOG.to_owned(), "-rw-r--r--".to_owned()));
    }
    files.sort();
    files
}

/// One entry of `dpkg-deb -c`: mode, owner, path (without `./`).
fn parse_listing(text: &str) -> Vec<(String, String, String)> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let mode = f.next()?.to_owned();
            let owner = f.next()?.to_owned();
            let path = f.nth(3)?.trim_start_matches("./").to_owned();
            Some((mode, owner, path))
        })
        .collect()
}

/// Every file and directory: expected, root-owned, with its mode.
fn check_listing(deb: &Path) -> Result<(), String> {
    println!("==> deb: every file and mode (dpkg-deb -c)");
    let text = run(Command::new("dpkg-deb").arg("-c").arg(deb))?;
    let entries = parse_listing(&text);
    let mut files = Vec::new();
    for (mode, owner, path) in &entries {
        if owner != "root/root" && owner != "0/0" {
            return Err(format!("{path} is owned by {owner}, not root (0/0)"));
        }
        if mode.starts_with('d') {
            if mode != "drwxr-xr-x" {
                return Err(format!("directory {path} has mode {mode}, not drwxr-xr-x"));
            }
        } else {
            files.push((path.trim_end_matches('/').to_owned(), mode.clone()));
        }
    }
    files.sort();
    let expected = expected_files();
    if files != expected {
        let missing: Vec<_> = expected.iter().filter(|e| !files.contains(e)).collect();
        let extra: Vec<_> = files.iter().filter(|f| !expected.contains(f)).collect();
        return Err(format!(
            "the package's files differ from the expected list: missing or other mode {missing:?}, \
             unexpected {extra:?}"
        ));
    }
    println!(
        "    {} files, all root-owned with the expected modes",
        files.len()
    );
    Ok(())
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn same_as_source(root: &Path, installed: &str, source: &Path) -> Result<(), String> {
    if read(&root.join(installed))? != read(source)? {
        return Err(format!(
            "/{installed} in the package differs from {}",
            source.display()
        ));
    }
    Ok(())
}

/// The unpacked tree: the files are their sources, the binary runs.
fn check_unpacked(deb: &Path, root: &Path) -> Result<(), String> {
    println!("==> deb: unpacked with dpkg-deb -x into {}", root.display());
    run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(root))?;
    let src = packaging();
    same_as_source(
        root,
        "lib/systemd/system/bmclink.service",
        &src.join("bmclink.service"),
    )?;
    same_as_source(
        root,
        "lib/udev/rules.d/70-bmclink.rules",
        &src.join("70-bmclink.rules"),
    )?;
    same_as_source(
        root,
        "usr/share/doc/bmclink/copyright",
        &src.join("debian/copyright"),
    )?;
    same_as_source(
        root,
        "usr/share/lintian/overrides/bmclink",
        &src.join("debian/lintian-overrides"),
    )?;
    if src.join("bmclink.catalog").exists() {
        same_as_source(root, CATALOG, &src.join("bmclink.catalog"))?;
    }
    let man = run(Command::new("gzip")
        .arg("-dc")
        .arg(root.join("usr/share/man/man8/bmclink.8.gz")))?;
    if !man.contains(".TH bmclink 8") || !man.contains("install") {
        return Err("the man page is not bmclink(8) with its subcommands".into());
    }
    for (path, needle) in [
        (
            "usr/share/bash-completion/completions/bmclink",
            "complete -F _bmclink",
        ),
        (
            "usr/share/zsh/vendor-completions/_bmclink",
            "#compdef bmclink",
        ),
        (
            "usr/share/fish/vendor_completions.d/bmclink.fish",
            "complete -c bmclink",
        ),
    ] {
        let text = String::from_utf8_lossy(&read(&root.join(path))?).into_owned();
        if !text.contains(needle) {
            return Err(format!(
                "/{path} is not a bmclink completion (no `{needle}`)"
            ));
        }
    }
    let version = run(Command::new(root.join("usr/sbin/bmclink")).arg("--version"))?;
    let want = format!("bmclink {}", env!("CARGO_PKG_VERSION"));
    if version.trim() != want {
        return Err(format!(
            "/usr/sbin/bmclink --version says {version:?}, not {want:?}"
        ));
    }
    println!("    unit, rule, copyright, overrides, man page, completions and binary are right");
    Ok(())
}

fn mode(path: &Path) -> Result<u32, String> {
    fs::symlink_metadata(path)
        .map(|m| m.permissions().mode() & 0o7777)
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Runs a maintainer script as dpkg does for `--root` (DPKG_ROOT set).
fn script(control: &Path, root: &Path, name: &str, args: &[&str]) -> Result<String, String> {
    println!("    DPKG_ROOT={} {name} {}", root.display(), args.join(" "));
    run(Command::new("sh")
        .arg(control.join(name))
        .args(args)
        .env("DPKG_ROOT", root)
        .env("DPKG_MAINTSCRIPT_PACKAGE", PACKAGE)
        .env("DPKG_MAINTSCRIPT_NAME", name)
        .stdin(Stdio::null()))
}

fn ensure(cond: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(what())
    }
}

/// The maintainer scripts against the scratch root, and the records list
/// of postrm against the core's.
fn check_scripts(deb: &Path, control: &Path, root: &Path) -> Result<(), String> {
    println!("==> deb: maintainer scripts against the scratch root");
    run(Command::new("dpkg-deb").arg("-e").arg(deb).arg(control))?;
    for name in ["postinst", "prerm", "postrm"] {
        let m = mode(&control.join(name))?;
        ensure(m == 0o755, || format!("{name} has mode {m:o}, not 755"))?;
        run(Command::new("sh").arg("-n").arg(control.join(name)))?;
    }
    let postrm = String::from_utf8_lossy(&read(&control.join("postrm"))?).into_owned();
    let listed: Vec<&str> = postrm
        .lines()
        .find_map(|l| l.strip_prefix("RECORDS=\""))
        .and_then(|l| l.strip_suffix('"'))
        .map(|l| l.split_whitespace().collect())
        .unwrap_or_default();
    let records: Vec<&str> = Record::ALL.iter().map(|r| r.name()).collect();
    ensure(listed == records, || {
        format!("postrm's RECORDS {listed:?} are not the core's records {records:?}")
    })?;

    let state = root.join("var/lib/bmclink");
    let bmclink = root.join("usr/sbin/bmclink");
    // A fresh install under DPKG_ROOT: the state directory, no identity
    // (an image's machines must not share a key).
    script(control, root, "postinst", &["configure"])?;
    let m = mode(&state)?;
    ensure(m == 0o700, || {
        format!("{} has mode {m:o}, not 700", state.display())
    })?;
    ensure(!state.join("identity.key").exists(), || {
        "postinst under DPKG_ROOT made an identity".into()
    })?;
    ensure(
        !root.join("etc/systemd/system/bmclink.service").exists()
            && !root.join("etc/udev/rules.d/70-bmclink.rules").exists(),
        || "postinst wrote a unit or rule to /etc; the package's are in /lib".into(),
    )?;
    // What postinst runs on a live system: an identity when there is none,
    // kept on the next configure (an upgrade keeps the enrollment).
    let live = |args: &[&str]| {
        run(Command::new(&bmclink)
            .args(["--config", "/dev/null"])
            .args(args)
            .arg("--root")
            .arg(root)
            .env("JOURNAL_STREAM", "0:0"))
    };
    let first = live(&["install", "--package-mode"])?;
    let key = state.join("identity.key");
    let m = mode(&key)?;
    ensure(m == 0o600, || {
        format!("{} has mode {m:o}, not 600", key.display())
    })?;
    let cert = read(&state.join("identity.crt"))?;
    let again = live(&["install", "--package-mode"])?;
    ensure(
        again.contains("client identity kept") && read(&state.join("identity.crt"))? == cert,
        || format!("a second configure replaced the identity:\n{first}\n{again}"),
    )?;
    // An upgrade's configure keeps it too.
    script(control, root, "postinst", &["configure", "0.1.0-1"])?;
    ensure(read(&state.join("identity.crt"))? == cert, || {
        "postinst configure (upgrade) replaced the identity".into()
    })?;

    // What a killed agent and a manual `bmclink install` leave behind.
    fs::write(state.join("status.json"), "{}").map_err(|e| e.to_string())?;
    fs::write(state.join("link"), [0u8; 4]).map_err(|e| e.to_string())?;
    for p in [
        "etc/systemd/system/bmclink.service",
        "etc/udev/rules.d/70-bmclink.rules",
    ] {
        let p = root.join(p);
        if let Some(d) = p.parent() {
            fs::create_dir_all(d).map_err(|e| e.to_string())?;
        }
        fs::write(&p, "# written by bmclink install\n").map_err(|e| e.to_string())?;
    }
    let hosts = root.join("etc/hosts");
    let others = "127.0.0.1 localhost\n";
    fs::write(
        &hosts,
        format!("{others}# BEGIN bmclink (managed by bmclink, do not edit)\n169.254.1.1 idrac.local drac.local\n# END bmclink\n"),
    )
    .map_err(|e| e.to_string())?;

    script(control, root, "prerm", &["remove"])?;
    ensure(!state.join("status.json").exists(), || {
        "prerm left status.json".into()
    })?;
    ensure(
        !root.join("etc/systemd/system/bmclink.service").exists()
            && !root.join("etc/udev/rules.d/70-bmclink.rules").exists(),
        || "prerm left the unit or rule `bmclink install` wrote to /etc".into(),
    )?;
    let h = String::from_utf8_lossy(&read(&hosts)?).into_owned();
    ensure(h == others, || format!("prerm left the hosts block: {h:?}"))?;
    ensure(key.exists() && state.join("link").exists(), || {
        "prerm remove took the records; they stay until purge".into()
    })?;
    script(control, root, "postrm", &["remove"])?;
    ensure(key.exists(), || "postrm remove took the records".into())?;
    fs::write(state.join("enroll.credential"), "acct\nsecret\n").map_err(|e| e.to_string())?;
    script(control, root, "postrm", &["purge"])?;
    ensure(!state.exists(), || {
        let left: Vec<_> = fs::read_dir(&state)
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
            .unwrap_or_default();
        format!("postrm purge left {} with {left:?}", state.display())
    })?;
    println!("    postinst, prerm and postrm did what install and uninstall do, without systemd");
    Ok(())
}

/// Where a static busybox is (it is the chroot's shell), if anywhere.
fn static_busybox() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    let found = std::env::split_paths(&path)
        .map(|d| d.join("busybox"))
        .find(|p| p.is_file())?;
    // `ldd` says "not a dynamic executable" (and fails) for a static one.
    let dynamic = Command::new("ldd")
        .arg(&found)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    (!dynamic).then_some(found)
}

/// The shared libraries `binary` loads, as `ldd` names them.
fn libraries(binary: &Path) -> Result<Vec<PathBuf>, String> {
    let text = run(Command::new("ldd").arg(binary))?;
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

/// The maintainer scripts as they run in a chroot (an image build, a
/// debootstrap): no DPKG_ROOT, no systemd, no udev. postinst must configure
/// without failing and without making an identity; prerm and postrm purge
/// must clean up. Root only (chroot); skipped with the reason otherwise,
/// a failure under BMCLINK_REQUIRE_ROOT=1.
fn check_chroot(deb: &Path, control: &Path, dir: &Path) -> Result<(), String> {
    println!("==> deb: maintainer scripts in a chroot without systemd");
    // SAFETY: geteuid has no preconditions.
    let root_user = unsafe { libc::geteuid() } == 0;
    let busybox = static_busybox();
    let why_not = match (root_user, &busybox) {
        (false, _) => Some("it needs root (chroot)"),
        (true, None) => {
            Some("no static busybox for the chroot's shell (apt-get install busybox-static)")
        }
        (true, Some(_)) => None,
    };
    if let Some(why) = why_not {
        if std::env::var("BMCLINK_REQUIRE_ROOT").is_ok_and(|v| v == "1") {
            return Err(format!("the chroot check cannot run: {why}"));
        }
        println!("    skipped: {why}");
        return Ok(());
    }
    let busybox = busybox.unwrap_or_default();
    run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(dir))?;
    let io = |e: std::io::Error| e.to_string();
    let bin = dir.join("bin");
    fs::create_dir_all(&bin).map_err(io)?;
    fs::copy(&busybox, bin.join("busybox")).map_err(io)?;
    // What the scripts use outside their live-system branches; no /dev
    // either (a bare chroot): nothing may depend on /dev/null.
    for applet in ["sh", "rm", "rmdir", "ls"] {
        std::os::unix::fs::symlink("busybox", bin.join(applet)).map_err(io)?;
    }
    for lib in libraries(&dir.join("usr/sbin/bmclink"))? {
        let to = dir.join(lib.strip_prefix("/").unwrap_or(&lib));
        if let Some(d) = to.parent() {
            fs::create_dir_all(d).map_err(io)?;
        }
        fs::copy(&lib, &to).map_err(|e| format!("cannot copy {}: {e}", lib.display()))?;
    }
    let info = dir.join("var/lib/dpkg/info");
    fs::create_dir_all(&info).map_err(io)?;
    for name in ["postinst", "prerm", "postrm"] {
        fs::copy(control.join(name), info.join(format!("bmclink.{name}"))).map_err(io)?;
    }
    let in_chroot = |name: &str, args: &[&str]| {
        println!("    chroot: {name} {}", args.join(" "));
        run(Command::new("chroot")
            .arg(dir)
            .arg("/bin/sh")
            .arg(format!("/var/lib/dpkg/info/bmclink.{name}"))
            .args(args)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("DPKG_MAINTSCRIPT_PACKAGE", PACKAGE)
            .stdin(Stdio::null()))
    };
    in_chroot("postinst", &["configure"])?;
    let state = dir.join("var/lib/bmclink");
    let m = mode(&state)?;
    ensure(m == 0o700, || {
        format!("in the chroot {} has mode {m:o}, not 700", state.display())
    })?;
    ensure(!state.join("identity.key").exists(), || {
        "postinst made an identity in a chroot (an image would share it)".into()
    })?;
    fs::write(state.join("link"), [0u8; 4]).map_err(io)?;
    in_chroot("prerm", &["remove"])?;
    ensure(state.join("link").exists(), || {
        "prerm remove took the records".into()
    })?;
    in_chroot("postrm", &["purge"])?;
    ensure(!state.exists(), || {
        "postrm purge left the state directory".into()
    })?;
    println!("    configured, removed and purged without systemd, udev or DPKG_ROOT");
    Ok(())
}

/// lintian, no error allowed (warnings are printed). Required in CI.
fn lintian(deb: &Path) -> Result<(), String> {
    if Command::new("lintian")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_err()
    {
        if std::env::var_os("CI").is_some() {
            return Err("lintian is missing (.ci/run installs it)".into());
        }
        println!("==> deb: lintian is missing here: skipped (apt-get install lintian)");
        return Ok(());
    }
    println!("==> deb: lintian --fail-on error {}", deb.display());
    let out = Command::new("lintian")
        .args(["--fail-on", "error", "--display-info"])
        .arg(deb)
        .output()
        .map_err(|e| format!("cannot run lintian: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    for line in text.lines() {
        println!("    {line}");
    }
    ensure(out.status.success(), || {
        format!(
            "lintian reported errors ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )
    })?;
    let errors = text.lines().filter(|l| l.starts_with("E: ")).count();
    ensure(errors == 0, || {
        format!("lintian reported {errors} error(s)")
    })?;
    println!("    lintian: no errors");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dpkg_listing_parses_into_mode_owner_and_path() {
        let text = "drwxr-xr-x root/root         0 2026-12-02 19:00 ./\n\
                    -rwxr-xr-x root/root   4521344 2026-12-02 19:00 ./usr/sbin/bmclink\n";
        assert_eq!(
            parse_listing(text),
            [
                ("drwxr-xr-x".into(), "root/root".into(), "".into()),
                (
                    "-rwxr-xr-x".into(),
                    "root/root".into(),
                    "usr/sbin/bmclink".into()
                ),
            ]
        );
    }

    #[test]
    fn the_expected_files_hold_the_binary_unit_rule_man_page_and_completions() {
        let files = expected_files();
        for want in [
            "usr/sbin/bmclink",
            "lib/systemd/system/bmclink.service",
            "lib/udev/rules.d/70-bmclink.rules",
            "usr/share/man/man8/bmclink.8.gz",
            "usr/share/zsh/vendor-completions/_bmclink",
        ] {
            assert!(files.iter().any(|(p, _)| p == want), "{want}");
        }
        assert_eq!(
            files.iter().any(|(p, _)| p == CATALOG),
            packaging().join("bmclink.catalog").exists()
        );
    }
}
