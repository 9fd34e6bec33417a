//! The report: a table for people, JSON and JUnit XML for machines.

use crate::checks::{Outcome, Verdict};

/// Counts of each verdict.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Passed.
    pub pass: usize,
    /// Failed.
    pub fail: usize,
    /// Could not run.
    pub skip: usize,
}

/// Tallies `outcomes`.
pub fn summary(outcomes: &[Outcome]) -> Summary {
    let mut s = Summary::default();
    for o in outcomes {
        match o.verdict {
            Verdict::Pass => s.pass += 1,
            Verdict::Fail => s.fail += 1,
            Verdict::Skip => s.skip += 1,
        }
    }
    s
}

/// Whether the run passes: nothing failed, and nothing was skipped unless
/// `allow_skip`.
pub fn passed(outcomes: &[Outcome], allow_skip: bool) -> bool {
    let s = summary(outcomes);
    s.fail == 0 && (allow_skip || s.skip == 0)
}

/// The table's header line and column widths.
const HEAD: [&str; 4] = ["check", "rule", "verdict", "evidence"];

/// One table row (the header with `None`).
pub fn row(o: Option<&Outcome>) -> String {
    let (check, rule, verdict, evidence) = match o {
        Some(o) => (o.check, o.rule, o.verdict.as_str(), o.evidence.as_str()),
        None => (HEAD[0], HEAD[1], HEAD[2], HEAD[3]),
    };
    format!("{check:<24} {rule:<26} {verdict:<7} {evidence}")
}

/// The summary line under the table.
pub fn summary_line(outcomes: &[Outcome], allow_skip: bool) -> String {
    let s = summary(outcomes);
    format!(
        "{} checks: {} passed, {} failed, {} not run{}",
        outcomes.len(),
        s.pass,
        s.fail,
        s.skip,
        if s.skip > 0 && allow_skip {
            " (allowed: --allow-skip)"
        } else {
            ""
        }
    )
}

/// The report as JSON.
pub fn json(target: &str, outcomes: &[Outcome], allow_skip: bool) -> String {
    let s = summary(outcomes);
    let checks: Vec<_> = outcomes
        .iter()
        .map(|o| {
            serde_json::json!({
                "check": o.check,
                "rule": o.rule,
                "verdict": match o.verdict {
                    Verdict::Pass => "pass",
                    Verdict::Fail => "fail",
                    Verdict::Skip => "skip",
                },
                "evidence": o.evidence,
            })
        })
        .collect();
    let v = serde_json::json!({
        "target": target,
        "passed": passed(outcomes, allow_skip),
        "summary": { "pass": s.pass, "fail": s.fail, "skip": s.skip },
        "checks": checks,
    });
    serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"
}

fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// The report as JUnit XML: one testsuite, one testcase per check (the
/// rule as its classname).
pub fn junit(target: &str, outcomes: &[Outcome]) -> String {
    let s = summary(outcomes);
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(&format!(
        "<testsuites name=\"bmclink-conform\" tests=\"{}\" failures=\"{}\" skipped=\"{}\">\n",
        outcomes.len(),
        s.fail,
        s.skip
    ));
    out.push_str(&format!(
        "  <testsuite name=\"bmclink-conform {}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\">\n",
        xml(target),
        outcomes.len(),
        s.fail,
        s.skip
    ));
    for o in outcomes {
        let head = format!(
            "    <testcase classname=\"{}\" name=\"{}\"",
            xml(o.rule),
            xml(o.check)
        );
        match o.verdict {
            Verdict::Pass => out.push_str(&format!(
                "{head}>\n      <system-out>{}</system-out>\n    </testcase>\n",
                xml(&o.evidence)
            )),
            Verdict::Fail => out.push_str(&format!(
                "{head}>\n      <failure message=\"{}\"/>\n    </testcase>\n",
                xml(&o.evidence)
            )),
            Verdict::Skip => out.push_str(&format!(
                "{head}>\n      <skipped message=\"{}\"/>\n    </testcase>\n",
                xml(&o.evidence)
            )),
        }
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}
