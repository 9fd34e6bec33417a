//! bmclink's simulation kit: a simulated Ethernet segment, a virtual clock, a
//! simulated host and a simulated BMC, all in one thread and in virtual time.
//!
//! A test builds a [`World`] (host + BMC + segment), schedules faults with
//! [`World::at`], and runs the real agent against it with [`run_agent`]:
//! RFC timers of seconds pass in microseconds and every run with the same
//! seed is the same run. Firmware rigs can reuse the BMC and the segment.

pub mod bench_link;
pub mod bench_stack;
pub mod bench_tls;
pub mod bmc;
pub mod bmc_tls;
pub mod clock;
pub mod describe;
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

use bmclink_core::agent::{Agent, AgentBuffers, AgentError, Exit};
use bmclink_core::Config;
use smoltcp::time::Instant;

pub use bmc::{BmcConfig, SimBmc};
pub use world::World;

/// Runs the agent with `cfg` in `world` until virtual time `until`, when the
/// world asks it to stop.
pub fn run_agent(world: &mut World, cfg: Config, until: Instant) -> Result<Exit, AgentError> {
    let mut bufs = Box::new(AgentBuffers::new());
    world.stop_at(until);
    let mut agent = Agent::new(cfg, &mut bufs, world)?;
    Ok(agent.run(world))
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
