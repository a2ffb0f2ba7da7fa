// A hand-written task_allocation candidate (not evolved): best fit, except that a gap left after the
// item which is positive but smaller than GAP is penalised, since such a gap is rarely filled later.
// The constants were chosen by a small grid search on the training distributions. The node tests and
// the network benchmark use it as a known, honest improvement to put through governance and rollout.
const GAP: f64 = 25.0;
const PENALTY: f64 = 25.0;

fn priority(item: f64, bins: &[f64]) -> Vec<f64> {
    bins.iter()
        .map(|&remaining| {
            let gap = remaining - item;
            if gap > 0.0 && gap < GAP { -gap - PENALTY } else { -gap }
        })
        .collect()
}
