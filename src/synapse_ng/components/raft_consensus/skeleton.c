/* raft_consensus: the vote tally that closes a governance proposal.
 * Fixed harness: the record buffer, the result buffer and the exported entry points. Only the block
 * between the EVOLVE markers may change: it must define `tally_votes` with the same signature.
 *
 * Semantics: per voter only the record with the highest `seq` counts; among that voter's records with
 * the same highest `seq`, the LAST one in the array counts. yes/no/abstain = sums of the weights of the
 * counted records by choice (0 yes, 1 no, 2 abstain); turnout = yes + no + abstain. outcome = 2 (no
 * quorum) if turnout < quorum, else 0 (approved) if yes + no > 0 and yes * den >= num * (yes + no),
 * else 1 (rejected). Weights are at most 2^20 and there are at most 2^20 records: int64 never overflows.
 * Freestanding: no libc (only stdint.h, stddef.h, stdbool.h, float.h, limits.h), so no malloc: use
 * static arrays. */
#include <stdint.h>
#include <stddef.h>
#include <stdbool.h>

#define MAX_VOTES (1u << 20)
#define POISON_SLOTS 64u

typedef struct {
    uint32_t voter;
    uint32_t seq;
    uint32_t choice; /* 0 yes, 1 no, 2 abstain */
    uint32_t weight; /* at most 2^20 */
} Record;

typedef struct {
    int64_t yes;
    int64_t no;
    int64_t abstain;
    int64_t turnout;
    int32_t outcome; /* 0 approved, 1 rejected, 2 no quorum */
} Tally;

static Record RECORDS[MAX_VOTES + POISON_SLOTS];
static int64_t RESULT[4];

// EVOLVE-BLOCK-START
/* Baseline: a table of (voter, best seq, index of the counted record), one entry per distinct voter,
 * searched linearly for every record (O(records x voters)); then the counted records are summed. */
typedef struct {
    uint32_t voter;
    uint32_t seq;
    uint32_t index;
} Seen;

static Seen seen[MAX_VOTES];

static Tally tally_votes(const Record *records, uint32_t n, int64_t quorum, int64_t num, int64_t den) {
    uint32_t distinct = 0;
    for (uint32_t i = 0; i < n; i++) {
        const Record *r = &records[i];
        uint32_t k = 0;
        while (k < distinct && seen[k].voter != r->voter) k++;
        if (k == distinct) {
            seen[k].voter = r->voter;
            seen[k].seq = r->seq;
            seen[k].index = i;
            distinct++;
        } else if (r->seq >= seen[k].seq) {
            seen[k].seq = r->seq;
            seen[k].index = i;
        }
    }
    Tally t;
    t.yes = 0;
    t.no = 0;
    t.abstain = 0;
    t.turnout = 0;
    for (uint32_t k = 0; k < distinct; k++) {
        const Record *r = &records[seen[k].index];
        int64_t w = (int64_t)r->weight;
        if (r->choice == 0) t.yes += w;
        else if (r->choice == 1) t.no += w;
        else t.abstain += w;
        t.turnout += w;
    }
    if (t.turnout < quorum) t.outcome = 2;
    else if (t.yes + t.no > 0 && t.yes * den >= num * (t.yes + t.no)) t.outcome = 0;
    else t.outcome = 1;
    return t;
}
// EVOLVE-BLOCK-END

__attribute__((export_name("records_ptr"))) int32_t records_ptr(void) {
    return (int32_t)(uintptr_t)RECORDS;
}

__attribute__((export_name("result_ptr"))) int32_t result_ptr(void) {
    return (int32_t)(uintptr_t)RESULT;
}

__attribute__((export_name("tally"))) int32_t tally(int32_t n, int64_t quorum, int32_t num, int32_t den) {
    if (n < 0 || (uint32_t)n > MAX_VOTES) return -1;
    if (num <= 0 || den <= 0 || num > den || den > 65535) return -2;
    if (quorum < 0) return -3;
    Tally t = tally_votes(RECORDS, (uint32_t)n, quorum, (int64_t)num, (int64_t)den);
    RESULT[0] = t.yes;
    RESULT[1] = t.no;
    RESULT[2] = t.abstain;
    RESULT[3] = t.turnout;
    int64_t cap = (int64_t)n << 20;
    if (t.yes < 0 || t.yes > cap || t.no < 0 || t.no > cap || t.abstain < 0 || t.abstain > cap ||
        t.turnout < 0 || t.turnout > cap)
        return -4;
    if (t.yes + t.no + t.abstain != t.turnout) return -5;
    if (t.outcome < 0 || t.outcome > 2) return -6;
    return t.outcome;
}
