// The heuristic FunSearch evolved for Weibull-distributed items (Romera-Paredes et al., Nature 2023),
// rewritten in Rust as an EVOLVE block for the task_allocation component. It compares neighbouring
// bins (the last line), which is why the harness hands `priority` every feasible bin at once.
fn priority(item: f64, bins: &[f64]) -> Vec<f64> {
    let max_cap = bins.iter().cloned().fold(f64::MIN, f64::max);
    let mut score: Vec<f64> = bins
        .iter()
        .map(|&b| {
            let s = (b - max_cap) * (b - max_cap) / item + b * b / (item * item) + b * b / (item * item * item);
            if b > item { -s } else { s }
        })
        .collect();
    for i in (1..score.len()).rev() {
        score[i] -= score[i - 1];
    }
    score
}
