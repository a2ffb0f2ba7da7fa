// raft_consensus: the tally the embedded model wrote in benchmarks/evolution.py --component raft_consensus
// --minutes 20 --seed 1 (2026-12-04, candidate 14, an llm-block answer; held out: 63x less fuel at 100k votes).
// The block as it was found, comments included; benchmarks/components.py --raft-block measures it.
/// Improved: a list of (voter, best seq, index of the counted record), one entry per distinct voter,
/// searched linearly for every record (O(records x voters)); then the counted records are summed.
fn tally_votes(records: &[Record], quorum: i64, num: i64, den: i64) -> Tally {
    let mut best: std::collections::HashMap<u32, (u32, usize)> = std::collections::HashMap::with_capacity(records.len());
    for (i, r) in records.iter().enumerate() {
        let e = best.entry(r.voter).or_insert((r.seq, i));
        if r.seq >= e.0 {
            *e = (r.seq, i);
        }
    }
    let mut t = Tally::default();
    let mut yes_sum = 0;
    let mut no_sum = 0;
    let mut abstain_sum = 0;
    let mut turnout_sum = 0;
    for (_, i) in best.values() {
        let r = &records[*i];
        let w = r.weight as i64;
        match r.choice {
            0 => yes_sum += w,
            1 => no_sum += w,
            _ => abstain_sum += w,
        }
        turnout_sum += w;
    }
    t.yes = yes_sum;
    t.no = no_sum;
    t.abstain = abstain_sum;
    t.turnout = turnout_sum;
    t.outcome = if t.turnout < quorum {
        2
    } else if t.yes + t.no > 0 && t.yes * den >= num * (t.yes + t.no) {
        0
    } else {
        1
    };
    t
}

