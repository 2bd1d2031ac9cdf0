//! The shared rate budget across processes: answers are merged with what
//! other processes reserved meanwhile, so four processes hammering one
//! bucket never earn a 429, and the budget shown is never negative.

use std::process::Stdio;
use std::time::Instant;

use crate::test::{Env, HCC, Sim};

#[test]
fn four_processes_share_the_bucket_without_a_429() {
    // 300 requests an hour, 120 times faster: 10 a second. The latency
    // keeps requests in flight while the others reserve.
    let sim = Sim::start(&[
        "--rate-limit",
        "300/h",
        "--time-scale",
        "120",
        "--latency",
        "20",
    ]);
    let env = Env::new();
    const EACH: usize = 100;
    let started = Instant::now();
    let loops: Vec<_> = (0..4)
        .map(|_| {
            let mut cmd = std::process::Command::new("bash");
            cmd.args([
                "-c",
                &format!(
                    r#"for i in $(seq {EACH}); do "$HCC" types >/dev/null || echo "failed: $?"; done"#
                ),
            ])
            .env("HCC", HCC)
            .env("HCC_HOME", env.home())
            .envs(sim.client_env())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
            cmd.spawn().expect("spawn a loop")
        })
        .collect();
    for child in loops {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "", "{out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("429"), "{stderr}");
    }
    let elapsed = started.elapsed().as_secs_f64();
    let stats = sim.stats();
    assert_eq!(stats["rate_limited"], 0, "{stats}");
    // 400 requests from a bucket of 300 refilling 10 a second: the last
    // hundred had to wait for tokens (and the budget paced them).
    let requests = stats["requests"].as_u64().unwrap();
    assert!(requests >= 4 * EACH as u64, "{stats}");
    assert!(
        requests as f64 <= 300.0 + 10.0 * elapsed + 1.0,
        "{requests} requests in {elapsed:.1} s: more than the bucket holds"
    );
    let status = env.run(&["status", "--json"]);
    let report: serde_json::Value = serde_json::from_str(&status.stdout).expect("status JSON");
    let left = report["rate_budget"]["remaining"].as_i64().unwrap();
    assert!(left >= 0, "{report}");
}
