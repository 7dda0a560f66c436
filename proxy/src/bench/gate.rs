//! Thresholds that fail a bench run: ratios, CPU, added p99, and CPU
//! regressions against a baseline result.

use std::path::Path;

use anyhow::Context;

use super::report::Medians;

#[derive(Debug, Clone, Default)]
pub struct Gates {
    pub min_ratio: Option<f64>,
    pub max_cpu_ms_per_mb: Option<f64>,
    pub max_p99_added_ms: Option<f64>,
    /// The baseline's medians, the regression allowed in percent, and
    /// whether CPU is compared relative to the load's CPU.
    pub baseline: Option<(Medians, f64, bool)>,
}

/// A baseline result file's medians (`strait bench --json` output).
pub fn read_baseline(path: &Path) -> anyhow::Result<Medians> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("--baseline {}", path.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("--baseline {}: not JSON", path.display()))?;
    serde_json::from_value(v["medians"].clone())
        .with_context(|| format!("--baseline {}: no \"medians\" object", path.display()))
}

/// Every threshold `m` misses, each as a sentence; empty when all hold.
/// A threshold whose figure was not measured is missed too (never passed
/// by omission).
pub fn check(m: &Medians, g: &Gates) -> Vec<String> {
    let mut out = Vec::new();
    let mut at_least = |name: &str, got: Option<f64>, min: f64| match got {
        Some(v) if v >= min => {}
        Some(v) => out.push(format!("{name} {v:.3} is below {min}")),
        None => out.push(format!("{name} was not measured (needed: at least {min})")),
    };
    if let Some(min) = g.min_ratio {
        at_least("produce MB/s ratio", m.produce_ratio, min);
        at_least("consume MB/s ratio", m.consume_ratio, min);
    }
    let mut at_most = |name: &str, got: Option<f64>, max: f64| match got {
        Some(v) if v <= max => {}
        Some(v) => out.push(format!("{name} {v:.3} is above {max}")),
        None => out.push(format!("{name} was not measured (needed: at most {max})")),
    };
    if let Some(max) = g.max_cpu_ms_per_mb {
        at_most(
            "Strait CPU ms per MB (produce)",
            m.cpu_ms_per_mb_produce,
            max,
        );
        at_most(
            "Strait CPU ms per MB (consume)",
            m.cpu_ms_per_mb_consume,
            max,
        );
    }
    if let Some(max) = g.max_p99_added_ms {
        at_most("produce p99 added (ms)", m.p99_added_ms, max);
    }
    if let Some((base, pct, relative)) = &g.baseline {
        let absolute = [
            (
                "CPU ms per MB (produce)",
                m.cpu_ms_per_mb_produce,
                base.cpu_ms_per_mb_produce,
            ),
            (
                "CPU ms per MB (consume)",
                m.cpu_ms_per_mb_consume,
                base.cpu_ms_per_mb_consume,
            ),
            (
                "CPU µs per produce request",
                m.cpu_us_per_produce_request,
                base.cpu_us_per_produce_request,
            ),
            (
                "CPU µs per fetch request",
                m.cpu_us_per_fetch_request,
                base.cpu_us_per_fetch_request,
            ),
        ];
        let relative_to_load = [
            (
                "Strait CPU ÷ the load's CPU (produce)",
                m.strait_per_load_cpu_produce,
                base.strait_per_load_cpu_produce,
            ),
            (
                "Strait CPU ÷ the load's CPU (consume)",
                m.strait_per_load_cpu_consume,
                base.strait_per_load_cpu_consume,
            ),
        ];
        let compared: &[_] = if *relative {
            &relative_to_load
        } else {
            &absolute
        };
        for &(name, now, then) in compared {
            match (now, then) {
                (Some(now), Some(then)) if now <= then * (1.0 + pct / 100.0) => {}
                (Some(now), Some(then)) => out.push(format!(
                    "{name} {now:.3} is {:.0} % over the baseline's {then:.3} (allowed: {pct} %)",
                    (now / then - 1.0) * 100.0
                )),
                (None, Some(_)) => {
                    out.push(format!("{name} was not measured; the baseline has it"))
                }
                (_, None) => {}
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured() -> Medians {
        Medians {
            produce_ratio: Some(0.98),
            consume_ratio: Some(1.01),
            cpu_ms_per_mb_produce: Some(0.8),
            cpu_ms_per_mb_consume: Some(0.6),
            cpu_us_per_produce_request: Some(9.0),
            cpu_us_per_fetch_request: Some(40.0),
            p99_added_ms: Some(0.3),
            strait_per_load_cpu_produce: Some(0.4),
            strait_per_load_cpu_consume: Some(0.2),
        }
    }

    #[test]
    fn loose_gates_pass_and_tight_ones_fail_naming_the_figure() {
        let m = measured();
        let loose = Gates {
            min_ratio: Some(0.9),
            max_cpu_ms_per_mb: Some(1.0),
            max_p99_added_ms: Some(0.5),
            baseline: Some((m.clone(), 10.0, false)),
        };
        assert!(check(&m, &loose).is_empty(), "{:?}", check(&m, &loose));
        let tight = Gates {
            min_ratio: Some(0.99),
            max_cpu_ms_per_mb: Some(0.7),
            max_p99_added_ms: Some(0.1),
            baseline: None,
        };
        let failed = check(&m, &tight);
        assert_eq!(failed.len(), 3, "{failed:?}");
        assert!(
            failed[0].contains("produce MB/s ratio 0.980 is below 0.99"),
            "{failed:?}"
        );
        assert!(
            failed[1].contains("(produce) 0.800 is above 0.7"),
            "{failed:?}"
        );
    }

    #[test]
    fn a_regression_past_the_baseline_fails_and_a_missing_figure_never_passes() {
        let base = measured();
        let mut now = measured();
        now.cpu_us_per_produce_request = Some(11.0);
        let g = Gates {
            baseline: Some((base, 10.0, false)),
            ..Gates::default()
        };
        let failed = check(&now, &g);
        assert_eq!(failed.len(), 1, "{failed:?}");
        assert!(
            failed[0].contains("22 % over the baseline's 9.000"),
            "{failed:?}"
        );
        let unmeasured = Medians::default();
        let g = Gates {
            max_cpu_ms_per_mb: Some(1.0),
            ..Gates::default()
        };
        assert_eq!(check(&unmeasured, &g).len(), 2);
    }

    #[test]
    fn relative_comparison_reads_only_cpu_over_the_load_cpu() {
        let base = measured();
        let mut now = measured();
        // A slower machine: every absolute figure up 50 %, the ratio to the
        // load's own CPU unchanged.
        now.cpu_ms_per_mb_produce = Some(1.2);
        now.cpu_us_per_produce_request = Some(13.5);
        let relative = Gates {
            baseline: Some((base.clone(), 10.0, true)),
            ..Gates::default()
        };
        assert!(
            check(&now, &relative).is_empty(),
            "{:?}",
            check(&now, &relative)
        );
        let absolute = Gates {
            baseline: Some((base.clone(), 10.0, false)),
            ..Gates::default()
        };
        assert_eq!(check(&now, &absolute).len(), 2);
        now.strait_per_load_cpu_consume = Some(0.3);
        let failed = check(&now, &relative);
        assert_eq!(failed.len(), 1, "{failed:?}");
        assert!(
            failed[0].contains("(consume) 0.300 is 50 % over"),
            "{failed:?}"
        );
    }

    #[test]
    fn a_baseline_file_is_read_or_refused_clearly() {
        let dir = std::env::temp_dir().join(format!("strait-gate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.json");
        std::fs::write(
            &good,
            serde_json::json!({ "medians": measured() }).to_string(),
        )
        .unwrap();
        assert_eq!(read_baseline(&good).unwrap(), measured());
        let bad = dir.join("bad.json");
        std::fs::write(&bad, "not json").unwrap();
        assert!(format!("{:#}", read_baseline(&bad).unwrap_err()).contains("not JSON"));
        assert!(
            format!("{:#}", read_baseline(&dir.join("none.json")).unwrap_err())
                .contains("none.json")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
