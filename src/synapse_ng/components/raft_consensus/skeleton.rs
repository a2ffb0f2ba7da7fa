// raft_consensus: the vote tally that closes a governance proposal.
// Fixed harness: the record buffer, the result buffer and the exported entry points. Only the block
// between the EVOLVE markers may change: it must define `tally_votes` with the same signature.
//
// Semantics: per voter only the record with the highest `seq` counts; among that voter's records with
// the same highest `seq`, the LAST one in the slice counts. yes/no/abstain = sums of the weights of the
// counted records by choice (0 yes, 1 no, 2 abstain); turnout = yes + no + abstain. outcome = 2 (no
// quorum) if turnout < quorum, else 0 (approved) if yes + no > 0 and yes * den >= num * (yes + no),
// else 1 (rejected). Weights are at most 2^20 and there are at most 2^20 records: i64 never overflows.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Record {
    pub voter: u32,
    pub seq: u32,
    pub choice: u32, // 0 yes, 1 no, 2 abstain
    pub weight: u32, // at most 2^20
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub yes: i64,
    pub no: i64,
    pub abstain: i64,
    pub turnout: i64,
    pub outcome: i32, // 0 approved, 1 rejected, 2 no quorum
}

pub const MAX_VOTES: usize = 1 << 20;
pub const POISON_SLOTS: usize = 64;

static mut RECORDS: [Record; MAX_VOTES + POISON_SLOTS] = [Record {
    voter: 0,
    seq: 0,
    choice: 0,
    weight: 0,
}; MAX_VOTES + POISON_SLOTS];
static mut RESULT: [i64; 4] = [0; 4];

// EVOLVE-BLOCK-START
/// Baseline: a list of (voter, best seq, index of the counted record), one entry per distinct voter,
/// searched linearly for every record (O(records x voters)); then the counted records are summed.
fn tally_votes(records: &[Record], quorum: i64, num: i64, den: i64) -> Tally {
    let mut seen: Vec<(u32, u32, usize)> = Vec::new();
    for (i, r) in records.iter().enumerate() {
        let mut found = false;
        for entry in seen.iter_mut() {
            if entry.0 == r.voter {
                if r.seq >= entry.1 {
                    entry.1 = r.seq;
                    entry.2 = i;
                }
                found = true;
                break;
            }
        }
        if !found {
            seen.push((r.voter, r.seq, i));
        }
    }
    let mut t = Tally::default();
    for entry in seen.iter() {
        let r = &records[entry.2];
        let w = r.weight as i64;
        match r.choice {
            0 => t.yes += w,
            1 => t.no += w,
            _ => t.abstain += w,
        }
        t.turnout += w;
    }
    t.outcome = if t.turnout < quorum {
        2
    } else if t.yes + t.no > 0 && t.yes * den >= num * (t.yes + t.no) {
        0
    } else {
        1
    };
    t
}
// EVOLVE-BLOCK-END

// The buffers' addresses: the host writes the records and reads the result.
#[rustfmt::skip]
#[no_mangle] pub extern "C" fn records_ptr() -> i32 { unsafe { RECORDS.as_ptr() as i32 } }
#[rustfmt::skip]
#[no_mangle] pub extern "C" fn result_ptr() -> i32 { unsafe { RESULT.as_ptr() as i32 } }

#[no_mangle]
pub extern "C" fn tally(n: i32, quorum: i64, num: i32, den: i32) -> i32 {
    if n < 0 || n as usize > MAX_VOTES {
        return -1;
    }
    if num <= 0 || den <= 0 || num > den || den > 65535 {
        return -2;
    }
    if quorum < 0 {
        return -3;
    }
    let records: &[Record] = unsafe { &RECORDS[..n as usize] };
    let t = tally_votes(records, quorum, num as i64, den as i64);
    unsafe {
        RESULT = [t.yes, t.no, t.abstain, t.turnout];
    }
    let cap = (n as i64) << 20;
    for v in [t.yes, t.no, t.abstain, t.turnout] {
        if v < 0 || v > cap {
            return -4;
        }
    }
    if t.yes + t.no + t.abstain != t.turnout {
        return -5;
    }
    if t.outcome < 0 || t.outcome > 2 {
        return -6;
    }
    t.outcome
}
