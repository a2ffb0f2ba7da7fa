// task_allocation: online bin packing under the FunSearch protocol.
//
// Fixed harness, except the EVOLVE block. The host writes n item sizes (i32) at items_ptr() and calls
// pack(n, capacity). There are n bins, all at full capacity at first. For each item in turn, every bin
// that can still hold it (remaining >= item, used or not, in bin order) is passed to `priority`, and the
// item goes to the bin with the highest score (the first one on ties). The chosen bin of each item is
// written at assignment_ptr(); pack returns the number of bins used, or a negative error code. The host
// checks the assignment and recounts the bins itself: an invalid packing scores nothing.

// EVOLVE-BLOCK-START
/// Scores the bins that can hold `item`: `bins[k]` is the remaining capacity of the k-th of them, in
/// bin order (unused bins, at full capacity, included). Returns one finite score per bin; the item
/// goes to the highest score, the first one on ties. Fewer bins used in the end is better.
/// Baseline: best fit, the bin the item fills most tightly.
fn priority(item: f64, bins: &[f64]) -> Vec<f64> {
    bins.iter().map(|&remaining| -(remaining - item)).collect()
}
// EVOLVE-BLOCK-END

/// The harness. Its buffers are private to this module: `priority` sees only what it is given.
mod harness {
    use super::priority;

    const MAX_ITEMS: usize = 10000;

    static mut ITEMS: [i32; MAX_ITEMS] = [0; MAX_ITEMS];
    static mut ASSIGNMENT: [i32; MAX_ITEMS] = [0; MAX_ITEMS];
    static mut ERROR: [i32; 4] = [0; 4];
    static mut REMAINING: [f64; MAX_ITEMS] = [0.0; MAX_ITEMS];
    static mut FEASIBLE: [f64; MAX_ITEMS] = [0.0; MAX_ITEMS];
    static mut FEASIBLE_BIN: [u32; MAX_ITEMS] = [0; MAX_ITEMS];

    // The addresses the host writes the items to and reads the assignment (and an error) from.
    #[rustfmt::skip]
    #[no_mangle] pub extern "C" fn items_ptr() -> i32 { unsafe { ITEMS.as_ptr() as i32 } }
    #[rustfmt::skip]
    #[no_mangle] pub extern "C" fn assignment_ptr() -> i32 { unsafe { ASSIGNMENT.as_ptr() as i32 } }
    #[rustfmt::skip]
    #[no_mangle] pub extern "C" fn error_ptr() -> i32 { unsafe { ERROR.as_ptr() as i32 } }

    fn clamp(x: usize) -> i32 {
        if x > i32::MAX as usize {
            i32::MAX
        } else {
            x as i32
        }
    }

    unsafe fn pack_items(n_items: i32, capacity: i32) -> i32 {
        ERROR = [0; 4];
        if n_items < 0 || n_items as usize > MAX_ITEMS || capacity < 1 {
            ERROR = [n_items, capacity, -1, 0];
            return -1;
        }
        let n = n_items as usize;
        let full = capacity as f64;
        for j in 0..n {
            REMAINING[j] = full;
            ASSIGNMENT[j] = -1;
        }
        for i in 0..n {
            let size = ITEMS[i];
            if size < 1 || size > capacity {
                ERROR = [n_items, capacity, i as i32, 0];
                return -1;
            }
            let item = size as f64;
            let mut m = 0;
            for j in 0..n {
                if REMAINING[j] >= item {
                    FEASIBLE[m] = REMAINING[j];
                    FEASIBLE_BIN[m] = j as u32;
                    m += 1;
                }
            }
            if m == 0 {
                ERROR = [i as i32, 0, 0, 0];
                return -4;
            }
            let scores = priority(item, &FEASIBLE[..m]);
            if scores.len() != m {
                ERROR = [i as i32, m as i32, clamp(scores.len()), 0];
                return -2;
            }
            let mut best = 0;
            let mut best_score = 0.0;
            for k in 0..m {
                let score = scores[k];
                if !score.is_finite() {
                    let kind = if score.is_nan() {
                        0
                    } else if score > 0.0 {
                        1
                    } else {
                        2
                    };
                    ERROR = [i as i32, k as i32, m as i32, kind];
                    return -3;
                }
                if k == 0 || score > best_score {
                    best = k;
                    best_score = score;
                }
            }
            let bin = FEASIBLE_BIN[best] as usize;
            REMAINING[bin] -= item;
            ASSIGNMENT[i] = bin as i32;
        }
        let mut used = 0;
        for j in 0..n {
            if REMAINING[j] < full {
                used += 1;
            }
        }
        used
    }

    #[no_mangle]
    pub extern "C" fn pack(n_items: i32, capacity: i32) -> i32 {
        unsafe { pack_items(n_items, capacity) }
    }
}
