// gossip_protocol: choose the peers a node forwards a gossip message to.
//
// Fixed harness, except the EVOLVE block. When a node first receives a message it forwards it once, to
// the peers `choose_peers` picks. The host writes the node's n peers (latency ms, delivery probability,
// ms since last contact; the peer the message just came from has contact age 0) into the static arrays
// and calls select(n, fanout, seed). The chosen peer indices go to the output array; select returns how
// many. The host checks them: distinct, each in 0..n-1, at most fanout. Quality is the time until 99 %
// of the network holds the message (lower is better), in a simulation where each send arrives after the
// link's latency with the link's reliability as probability.
// Freestanding C: no libc; only <stdint.h> <stddef.h> <stdbool.h> <float.h> <limits.h>.

#include <stdint.h>
#include <stddef.h>
#include <stdbool.h>
#include <float.h>
#include <limits.h>

#define MAX_PEERS 256

static double LATENCY[MAX_PEERS];
static double RELIABILITY[MAX_PEERS];
static double CONTACT_AGE[MAX_PEERS];
static int32_t OUTPUT[MAX_PEERS];

// EVOLVE-BLOCK-START
// splitmix64: a small, good 64-bit generator (advances the state, returns the next number).
static uint64_t splitmix64(uint64_t *state) {
    *state += 0x9E3779B97F4A7C15ULL;
    uint64_t z = *state;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

// Chooses up to `fanout` distinct peers among the n peers: writes their indices (0..n-1) to
// out[0..count) and returns count (0..fanout).
// latency[i]: ms for a message to reach peer i; reliability[i]: probability that it arrives at all;
// contact_age[i]: ms since we last heard from peer i (0 for the peer we just got the message from).
// `seed` is fixed per decision: use it for any randomness. `out` has MAX_PEERS slots.
// Baseline: `fanout` peers uniformly at random (a partial Fisher-Yates shuffle driven by splitmix64).
static int32_t choose_peers(const double *latency, const double *reliability, const double *contact_age,
                            int32_t n, int32_t fanout, uint64_t seed, int32_t *out) {
    (void)latency;
    (void)reliability;
    (void)contact_age;
    int32_t k = fanout < n ? fanout : n;
    int32_t order[MAX_PEERS];
    for (int32_t i = 0; i < n; i++) {
        order[i] = i;
    }
    uint64_t state = seed;
    for (int32_t i = 0; i < k; i++) {
        int32_t j = i + (int32_t)(splitmix64(&state) % (uint64_t)(n - i));
        int32_t t = order[i];
        order[i] = order[j];
        order[j] = t;
        out[i] = order[i];
    }
    return k;
}
// EVOLVE-BLOCK-END

__attribute__((export_name("latency_ptr"))) int32_t latency_ptr(void) { return (int32_t)(uintptr_t)LATENCY; }

__attribute__((export_name("reliability_ptr"))) int32_t reliability_ptr(void) { return (int32_t)(uintptr_t)RELIABILITY; }

__attribute__((export_name("contact_age_ptr"))) int32_t contact_age_ptr(void) { return (int32_t)(uintptr_t)CONTACT_AGE; }

__attribute__((export_name("output_ptr"))) int32_t output_ptr(void) { return (int32_t)(uintptr_t)OUTPUT; }

// Returns the number of peers chosen, or -1 (negative count), -2 (count beyond the output buffer),
// -3 (bad arguments).
__attribute__((export_name("select"))) int32_t select(int32_t n_peers, int32_t fanout, int64_t seed) {
    if (n_peers < 0 || n_peers > MAX_PEERS || fanout < 0 || fanout > MAX_PEERS) {
        return -3;
    }
    int32_t count = choose_peers(LATENCY, RELIABILITY, CONTACT_AGE, n_peers, fanout, (uint64_t)seed, OUTPUT);
    if (count < 0) {
        return -1;
    }
    if (count > MAX_PEERS) {
        return -2;
    }
    return count;
}
