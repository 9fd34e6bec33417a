//! bmclink's simulation kit: a simulated Ethernet segment, a virtual clock, a
//! simulated host and a simulated BMC, all in one thread and in virtual time.
//!
//! A test builds a [`World`] (host + BMC + segment), schedules faults with
//! [`World::at`], and runs the real agent against it with [`run_agent`]:
//! RFC timers of seconds pass in microseconds and every run with the same
//! seed is the same run. Firmware rigs can reuse the BMC and the segment.

#[cfg(test)]
mod agent_machine;
pub mod bare_host;
pub mod bench_link;
pub mod bench_stack;
pub mod bench_tls;
pub mod bmc;
pub mod bmc_tls;
pub mod clock;
pub mod describe;
pub mod flood;
pub mod fuzzing;
pub mod ipmi_bmc;
pub mod kernel_bmc;
pub mod port_device;
pub mod qemu_vm;
pub mod responder;
pub mod rogue;
pub mod scenarios;
pub mod timeline;
pub mod tls_host;
pub mod wire;
pub mod world;

use bmclink_core::agent::{Agent, AgentBuffers, AgentError, Exit, Poll};
use bmclink_core::drive;
use bmclink_core::platform::{Wake, MAX_FRAME_LEN};
use bmclink_core::Config;
use smoltcp::time::Instant;

pub use bmc::{BmcConfig, SimBmc};
pub use world::World;

/// Runs the agent with `cfg` in `world` until virtual time `until`, when the
/// world asks it to stop. The simulation owns the loop: a step of the agent
/// (`drive::step`: the world's frames in, its timers, its frames out) and
/// the world's step take turns, the world running until the agent's next
/// deadline or a frame for it.
pub fn run_agent(world: &mut World, cfg: Config, until: Instant) -> Result<Exit, AgentError> {
    let mut bufs = Box::new(AgentBuffers::new());
    world.stop_at(until);
    let mut agent = Agent::new(cfg, &mut bufs, world)?;
    let mut frame = [0; MAX_FRAME_LEN];
    // Steps at one virtual instant: an agent that is due "now" for ever
    // (and so stops virtual time) is a livelock, not a slow test.
    let (mut instant, mut spins) = (world.clock.now(), 0u32);
    loop {
        match drive::step(&mut agent, world, &mut frame) {
            Poll::Stopped => return Ok(Exit::Stopped),
            Poll::Wait(at) => {
                let now = world.clock.now();
                spins = if now == instant { spins + 1 } else { 0 };
                instant = now;
                assert!(
                    spins < 100_000,
                    "the agent is due at once for ever at {now} (asks for {at:?}): a livelock"
                );
                if world.step(at) == Wake::Stop {
                    agent.stop(world);
                }
            }
        }
    }
}

/// The audit table as Markdown, generated from the core's
/// [`bmclink_core::audit::TABLE`]; the README carries it between markers.
pub fn audit_table_markdown() -> String {
    let mut out = String::from("| id | severity | meaning and fix |\n|---|---|---|\n");
    for layer in bmclink_core::audit::TABLE {
        for e in layer.iter() {
            out.push_str(&format!(
                "| {} | {} | {} |\n",
                e.id,
                e.severity.as_str(),
                e.summary.replace('|', "\\|")
            ));
        }
    }
    out
}

/// Where the journal message catalog is checked in (and where `bmclink
/// install` and the Debian package take it from), relative to the workspace.
pub const CATALOG_PATH: &str = "shim-linux/packaging/bmclink.catalog";

/// The journal's `MESSAGE_ID` of an audit ID as the catalog writes it: 32
/// lower-case hex digits of [`bmclink_core::audit::AuditId::message_id`].
pub fn message_id_hex(id: bmclink_core::audit::AuditId) -> String {
    id.message_id().iter().map(|b| format!("{b:02x}")).collect()
}

/// Words of `text` wrapped at `width` columns.
fn wrap(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut col = 0;
    for word in text.split_whitespace() {
        if col > 0 && col + 1 + word.len() > width {
            out.push('\n');
            col = 0;
        } else if col > 0 {
            out.push(' ');
            col += 1;
        }
        out.push_str(word);
        col += word.len();
    }
    out
}

/// The journal message catalog (systemd's catalog format, see
/// `journalctl(1)` `--update-catalog`), generated from the core's
/// [`bmclink_core::audit::TABLE`] like the README's table: one entry per
/// audit ID under its `MESSAGE_ID`, the summary as the meaning and the
/// fix, and the entry's own fields substituted by `journalctl -x`.
pub fn catalog() -> String {
    let mut out = String::from(
        "# bmclink's journal message catalog: what each audit event means and its fix.\n\
         # Shown by `journalctl -x -t bmclink` once installed in /usr/lib/systemd/catalog/\n\
         # and compiled with `journalctl --update-catalog`.\n\
         # Generated from the core's audit table by `cargo xtask audit-table --write`;\n\
         # do not edit (a test keeps it equal to the code).\n\
         # MESSAGE_ID = the first 128 bits of SHA-256(\"bmclink audit BLnnnn\").\n",
    );
    for layer in bmclink_core::audit::TABLE {
        for e in layer.iter() {
            let subject = e.summary.split("; ").next().unwrap_or(e.summary);
            out.push_str(&format!(
                "\n-- {}\nSubject: {} {}\nDefined-By: bmclink\n\
                 Documentation: man:bmclink(1)\n\
                 Documentation: https://example.invalid/bmclink#audit-events\n\n",
                message_id_hex(e.id),
                e.id,
                subject
            ));
            let mut body = String::new();
            let mut chars = e.summary.chars();
            if let Some(first) = chars.next() {
                body.extend(first.to_uppercase());
                body.push_str(chars.as_str());
            }
            body.push('.');
            out.push_str(&wrap(&body, 72));
            let priority = match e.severity {
                bmclink_core::audit::Severity::Error => 3,
                bmclink_core::audit::Severity::Warning => 4,
                bmclink_core::audit::Severity::Notice => 5,
                bmclink_core::audit::Severity::Info => 6,
            };
            let mut tail = format!(
                "{} is of severity {} (syslog priority {priority}).",
                e.id,
                e.severity.as_str()
            );
            if !e.fields.is_empty() {
                let fields: Vec<String> = e
                    .fields
                    .iter()
                    .map(|f| {
                        let name = format!("BMCLINK_{}", f.to_ascii_uppercase());
                        format!("{name}=@{name}@")
                    })
                    .collect();
                tail.push_str(&format!(" This entry: {}.", fields.join(" ")));
            }
            out.push_str("\n\n");
            out.push_str(&wrap(&tail, 72));
            out.push('\n');
        }
    }
    out
}

/// Markers around the generated audit table in README.md.
pub const README_TABLE_MARKERS: (&str, &str) =
    ("<!-- audit-table:begin -->\n", "<!-- audit-table:end -->");

/// Replaces the table between the markers in `readme`; `None` without markers.
pub fn readme_with_audit_table(readme: &str) -> Option<String> {
    let (begin, end) = README_TABLE_MARKERS;
    let start = readme.find(begin)? + begin.len();
    let stop = readme[start..].find(end)? + start;
    Some(format!(
        "{}{}{}",
        &readme[..start],
        audit_table_markdown(),
        &readme[stop..]
    ))
}
