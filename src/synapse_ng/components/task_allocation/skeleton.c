// task_allocation: online bin packing under the FunSearch protocol.
//
// Fixed harness, except the EVOLVE block. The host writes n item sizes (int32) at items_ptr() and calls
// pack(n, capacity). There are n bins, all at full capacity at first. For each item in turn, every bin
// that can still hold it (remaining >= item, used or not, in bin order) is passed to `priority`, and the
// item goes to the bin with the highest score (the first one on ties). The chosen bin of each item is
// written at assignment_ptr(); pack returns the number of bins used, or a negative error code. The host
// checks the assignment and recounts the bins itself: an invalid packing scores nothing.
// Freestanding C: no libc; only <stdint.h> <stddef.h> <stdbool.h> <float.h> <limits.h>.

#include <stdint.h>
#include <float.h>

void priority(double item, const double *bins, int n, double *scores);

// EVOLVE-BLOCK-START
// Scores the n bins that can hold `item`: bins[k] is the remaining capacity of the k-th of them, in
// bin order (unused bins, at full capacity, included). Writes one finite score per bin to scores[k]
// (scores not written stay NaN and are refused); the item goes to the highest score, the first one on
// ties. Fewer bins used in the end is better. Baseline: best fit, the bin the item fills most tightly.
void priority(double item, const double *bins, int n, double *scores) {
    for (int k = 0; k < n; k++) {
        scores[k] = -(bins[k] - item);
    }
}
// EVOLVE-BLOCK-END

// The harness. Its buffers are declared after the block: `priority` sees only what it is given.
#define TA_MAX_ITEMS 10000

static int32_t ta_items[TA_MAX_ITEMS];
static int32_t ta_assignment[TA_MAX_ITEMS];
static int32_t ta_error[4];
static double ta_remaining[TA_MAX_ITEMS];
static double ta_feasible[TA_MAX_ITEMS];
static int32_t ta_feasible_bin[TA_MAX_ITEMS];
static double ta_scores[TA_MAX_ITEMS];

__attribute__((export_name("items_ptr"))) int32_t items_ptr(void) { return (int32_t)(intptr_t)ta_items; }

__attribute__((export_name("assignment_ptr"))) int32_t assignment_ptr(void) { return (int32_t)(intptr_t)ta_assignment; }

__attribute__((export_name("error_ptr"))) int32_t error_ptr(void) { return (int32_t)(intptr_t)ta_error; }

static int32_t ta_fail(int32_t code, int32_t a, int32_t b, int32_t c, int32_t d) {
    ta_error[0] = a;
    ta_error[1] = b;
    ta_error[2] = c;
    ta_error[3] = d;
    return code;
}

__attribute__((export_name("pack"))) int32_t pack(int32_t n_items, int32_t capacity) {
    ta_fail(0, 0, 0, 0, 0);
    if (n_items < 0 || n_items > TA_MAX_ITEMS || capacity < 1) {
        return ta_fail(-1, n_items, capacity, -1, 0);
    }
    int n = n_items;
    double full = (double)capacity;
    for (int j = 0; j < n; j++) {
        ta_remaining[j] = full;
        ta_assignment[j] = -1;
    }
    for (int i = 0; i < n; i++) {
        int32_t size = ta_items[i];
        if (size < 1 || size > capacity) {
            return ta_fail(-1, n_items, capacity, i, 0);
        }
        double item = (double)size;
        int m = 0;
        for (int j = 0; j < n; j++) {
            if (ta_remaining[j] >= item) {
                ta_feasible[m] = ta_remaining[j];
                ta_feasible_bin[m] = j;
                m++;
            }
        }
        if (m == 0) {
            return ta_fail(-4, i, 0, 0, 0);
        }
        for (int k = 0; k < m; k++) {
            ta_scores[k] = __builtin_nan("");
        }
        priority(item, ta_feasible, m, ta_scores);
        int best = 0;
        double best_score = 0.0;
        for (int k = 0; k < m; k++) {
            double score = ta_scores[k];
            if (!(score >= -DBL_MAX && score <= DBL_MAX)) {
                int32_t kind = score != score ? 0 : (score > 0.0 ? 1 : 2);
                return ta_fail(-3, i, k, m, kind);
            }
            if (k == 0 || score > best_score) {
                best = k;
                best_score = score;
            }
        }
        int bin = ta_feasible_bin[best];
        ta_remaining[bin] -= item;
        ta_assignment[i] = bin;
    }
    int32_t used = 0;
    for (int j = 0; j < n; j++) {
        if (ta_remaining[j] < full) {
            used++;
        }
    }
    return used;
}
