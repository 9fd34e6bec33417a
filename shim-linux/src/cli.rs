//! The command line, defined once with clap's derive API; `--help`, shell
//! completions (`bmclink completions SHELL`) and the man page (`bmclink man`)
//! are all generated from it.
//!
//! # Exit codes
//!
//! | code | meaning |
//! |------|---------|
//! | 0 | success (also `status` when the agent is not running) |
//! | 1 | runtime failure: a device, socket or file operation failed |
//! | 2 | usage or configuration error: a bad flag, or a bad value in the config file (the key is named) |
//! | 3 | state error: a file under the state directory is corrupt or unreadable (the file and the fix are named) |
//! | 4 | not installed: no state directory or no identity; run `bmclink install` |
//!
//! Every error is one sentence on stderr that names what failed and the fix.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// How a command ended, as a process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: success.
    Ok = 0,
    /// 1: runtime failure.
    Runtime = 1,
    /// 2: usage or configuration error.
    Usage = 2,
    /// 3: corrupt or unreadable state.
    State = 3,
    /// 4: not installed.
    NotInstalled = 4,
}

/// A command's failure: the exit code and the sentence for stderr.
#[derive(Debug)]
pub struct Failure {
    /// The exit code.
    pub exit: Exit,
    /// What failed and the fix.
    pub message: String,
}

impl Failure {
    /// A failure with `exit` and `message`.
    pub fn new(exit: Exit, message: impl Into<String>) -> Self {
        Failure {
            exit,
            message: message.into(),
        }
    }
}

/// bmclink: a secure, self-configuring channel from this host to its BMC
/// over the OS-to-BMC USB network link (iDRAC USB NIC).
#[derive(Debug, Parser)]
#[command(name = "bmclink", version)]
#[command(
    after_help = "Exit codes: 0 ok, 1 runtime failure, 2 usage or config error, \
3 corrupt or unreadable state, 4 not installed."
)]
pub struct Cli {
    /// Config file (TOML) [default: /etc/bmclink/bmclink.toml when present].
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// State directory [default: /var/lib/bmclink, or state_dir from the config].
    #[arg(long, global = true, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// More log output on stderr (-v info, -vv debug, -vvv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the agent in the foreground (systemd runs this).
    Run(RunArgs),
    /// Install: state directory, systemd unit, udev rule, identity, enrollment.
    Install {
        /// Repair an existing install: rewrite the files and make a new identity.
        #[arg(long)]
        repair: bool,
        /// Install under this root directory instead of / (image builds, tests).
        #[arg(long, value_name = "DIR", default_value = "/")]
        root: PathBuf,
        /// The BMC certificate's SHA-256 fingerprint as the BMC's own UI shows
        /// it (64 hex digits, colons allowed): enrollment then talks only to
        /// that certificate.
        #[arg(long, value_name = "HEX")]
        bmc_fingerprint: Option<String>,
        /// A one-time enrollment account the administrator created on the BMC
        /// (with --secret-file); kept 0600 in the state directory until the
        /// agent has enrolled with it.
        #[arg(long, value_name = "NAME", requires = "secret_file")]
        account: Option<String>,
        /// The file holding the one-time account's secret (one line).
        #[arg(long, value_name = "FILE", requires = "account")]
        secret_file: Option<PathBuf>,
        /// For the Debian package's postinst: the unit and the udev rule are
        /// the package's (under /lib), so none is written to /etc; an
        /// existing identity and pin are kept (an upgrade keeps the
        /// enrollment) and an identity is made only when there is none.
        #[arg(long, conflicts_with_all = ["repair", "bmc_fingerprint", "account"])]
        package_mode: bool,
        /// With --package-mode: make no identity (chroots and image builds,
        /// so no key is shared by the machines an image is copied to; the
        /// agent makes one on its first run).
        #[arg(long, requires = "package_mode")]
        no_identity: bool,
    },
    /// Remove the unit, the udev rule, the records and the hosts-file block.
    Uninstall {
        /// Uninstall from under this root directory instead of /.
        #[arg(long, value_name = "DIR", default_value = "/")]
        root: PathBuf,
        /// For the Debian package's prerm: remove the hosts-file block, the
        /// status file and what `bmclink install` wrote to /etc, but keep
        /// the records (identity, pin, link record) until the package is purged.
        #[arg(long)]
        package_mode: bool,
    },
    /// Show the running agent's session: family, channel, TLS version, BMC firmware, features, addresses.
    Status {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Find the BMC's USB NIC and addresses in SMBIOS type 42 (DSP0270
    /// Redfish host interface) and show what bmclink takes from it.
    Discover(DiscoverArgs),
    /// The client certificate.
    #[command(subcommand)]
    Cert(CertCommand),
    /// The link record (whether the host side of the USB NIC was configured).
    #[command(subcommand)]
    Link(LinkCommand),
    /// The bootstrap channel: the BMC's firmware and one-time account over IPMI (DSP0270).
    #[command(subcommand)]
    Bootstrap(BootstrapCommand),
    /// Print shell completions to stdout.
    #[command(hide = true)]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) to stdout.
    #[command(hide = true)]
    Man,
}

/// `bmclink cert ...`
#[derive(Debug, Subcommand)]
pub enum CertCommand {
    /// Show the client certificate's fingerprint and the pinned BMC fingerprint.
    Show,
    /// Make a new client certificate and enroll it, without reinstalling.
    Renew,
}

/// `bmclink link ...`
#[derive(Debug, Subcommand)]
pub enum LinkCommand {
    /// Show the link record.
    Show,
    /// Erase the link record, so the next run configures the host side again.
    Reset,
}

/// `bmclink discover` flags.
#[derive(Debug, Args)]
pub struct DiscoverArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Read this `dmidecode --dump-bin` file instead of the host's table.
    #[arg(long, value_name = "FILE")]
    pub from_dump: Option<PathBuf>,
    /// The sysfs root: interfaces under DIR/class/net, and without
    /// --from-dump the table under DIR/firmware/dmi/tables.
    #[arg(long, value_name = "DIR", default_value = "/sys")]
    pub sysfs: PathBuf,
}

/// `bmclink bootstrap ...`
#[derive(Debug, Subcommand)]
pub enum BootstrapCommand {
    /// Ask the BMC for its device ID and a bootstrap account (bootstrapping
    /// stays enabled) and print them, the one-time password included.
    Show {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// The IPMI device and timeout.
        #[command(flatten)]
        ipmi: IpmiArgs,
    },
    /// Disable bootstrapping on the BMC (DSP0270 request 0x52 0x00).
    Disable {
        /// The IPMI device and timeout.
        #[command(flatten)]
        ipmi: IpmiArgs,
    },
}

/// Which IPMI device to use, and how long to wait for each answer.
#[derive(Debug, Args)]
pub struct IpmiArgs {
    /// The IPMI device [default: the first of /dev/ipmi0, /dev/ipmi/0, /dev/ipmidev/0].
    #[arg(long, value_name = "PATH")]
    pub device: Option<PathBuf>,
    /// How long to wait for each answer, in milliseconds [default: 5000].
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub timeout_ms: Option<u64>,
}

/// `bmclink run` flags; they override the config file.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Use a TAP device (created when missing) instead of the USB NIC.
    #[arg(long, value_name = "NAME", conflicts_with = "iface")]
    pub tap: Option<String>,
    /// Use this interface (AF_PACKET) [default: idrac, or interface from the config].
    #[arg(long, value_name = "NAME")]
    pub iface: Option<String>,
    /// Gone from the shipped binary (it does not carry the simulated BMC):
    /// `cargo xtask run --plain` in the source tree runs that simulation.
    /// Kept hidden so the old flag gets that sentence, not "unexpected argument".
    #[arg(long, hide = true)]
    pub sim: bool,
    /// Append audit events as JSON lines to FILE.
    #[arg(long, value_name = "FILE")]
    pub audit_log: Option<PathBuf>,
    /// Write every frame in and out to FILE (pcap).
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,
    /// The agent's MAC address [default: a fresh locally administered one].
    #[arg(long, value_name = "MAC")]
    pub mac: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn run_takes_one_backend_at_most() {
        let e =
            Cli::try_parse_from(["bmclink", "run", "--tap", "t0", "--iface", "eth0"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::ArgumentConflict);
        let c = Cli::try_parse_from(["bmclink", "run", "--tap", "t0", "--pcap", "x.pcap", "-v"])
            .unwrap();
        assert_eq!(c.verbose, 1);
        let Command::Run(r) = c.command else {
            panic!("not run")
        };
        assert_eq!(r.tap.as_deref(), Some("t0"));
        assert_eq!(r.pcap, Some(PathBuf::from("x.pcap")));
    }

    #[test]
    fn global_flags_work_after_the_subcommand() {
        let c = Cli::try_parse_from(["bmclink", "link", "show", "--state-dir", "/tmp/s"]).unwrap();
        assert_eq!(c.state_dir, Some(PathBuf::from("/tmp/s")));
        assert!(matches!(c.command, Command::Link(LinkCommand::Show)));
    }
}
