"""The gossip directions' shapes as whole blocks, with the rule left as a hole for the model to write
(Component.templates): the model writes the rule, the block around it is the direction's."""

from __future__ import annotations

from ..base import read_skeleton, split_skeleton

# The hole, once in every template: the model replaces it with the cost of sending to peer i.
RUST_HOLE = (
    "/* write the rule here: an f64 from latency[i], reliability[i] and contact_age[i] "
    "(0.0 for the sender), with named constants */"
)
# In C the hole is an expression: named constants go in #define lines above the function.
C_HOLE = (
    "/* write the rule here: an expression in latency[i], reliability[i] and contact_age[i] "
    "(0.0 for the sender); put named constants in #define lines above the function */"
)


def _baseline_head() -> str:
    """The baseline's doc comment and signature, from the skeleton (without its "Baseline:" line, which
    describes the random shuffle the template replaces): the template's function is the same function."""
    block = split_skeleton(read_skeleton(__package__, "skeleton.rs"))[1]
    doc = block.index("/// Chooses")
    signature_end = block.index(") -> i32 {\n", doc) + len(") -> i32 {\n")
    lines = block[doc:signature_end].splitlines(keepends=True)
    return "".join(line for line in lines if not line.startswith("/// Baseline:"))


_RUST_HEAD = _baseline_head()

_RUST_COST = f"""    // The cost of sending the message to peer i: the cheapest peers are chosen.
    let cost = |i: usize| -> f64 {{
        {RUST_HOLE}
    }};
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| cost(a).partial_cmp(&cost(b)).unwrap_or(core::cmp::Ordering::Equal));
"""

CHEAPEST = (
    _RUST_HEAD
    + """    let _ = seed;
    let n = latency.len();
    let k = if fanout < n { fanout } else { n };
"""
    + _RUST_COST
    + """    for i in 0..k {
        out[i] = order[i] as i32;
    }
    k as i32
}
"""
)

CHEAPEST_AND_RANDOM = (
    """/// splitmix64: a small, good 64-bit generator (advances the state, returns the next number).
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

"""
    + _RUST_HEAD
    + """    const RANDOM_SLOTS: usize = 2; // the last slots go to random peers, so long links still carry it
    let n = latency.len();
    let k = if fanout < n { fanout } else { n };
"""
    + _RUST_COST
    + """    let fast = if k > RANDOM_SLOTS { k - RANDOM_SLOTS } else { k };
    let mut state = seed;
    for i in fast..k {
        let j = i + (splitmix64(&mut state) % ((n - i) as u64)) as usize;
        order.swap(i, j);
    }
    for i in 0..k {
        out[i] = order[i] as i32;
    }
    k as i32
}
"""
)

C_CHEAPEST = f"""// Chooses up to `fanout` distinct peers among the n peers: writes their indices (0..n-1) to
// out[0..count) and returns count (0..fanout).
// latency[i]: ms for a message to reach peer i; reliability[i]: probability that it arrives at all;
// contact_age[i]: ms since we last heard from peer i (0 for the peer we just got the message from).
static int32_t choose_peers(const double *latency, const double *reliability, const double *contact_age,
                            int32_t n, int32_t fanout, uint64_t seed, int32_t *out) {{
    (void)seed;
    int32_t k = fanout < n ? fanout : n;
    double cost[MAX_PEERS]; // the cost of sending the message to peer i: the cheapest are chosen
    int32_t order[MAX_PEERS];
    for (int32_t i = 0; i < n; i++) {{
        cost[i] = {C_HOLE};
        order[i] = i;
    }}
    for (int32_t i = 0; i < k; i++) {{ // a partial selection sort: the k cheapest, cheapest first
        int32_t best = i;
        for (int32_t j = i + 1; j < n; j++) {{
            if (cost[order[j]] < cost[order[best]]) {{
                best = j;
            }}
        }}
        int32_t t = order[i];
        order[i] = order[best];
        order[best] = t;
        out[i] = order[i];
    }}
    return k;
}}
"""

# In the order of GossipProtocol.directions: the first and third directions share the cheapest-k shape.
RUST_TEMPLATES = (CHEAPEST, CHEAPEST_AND_RANDOM, CHEAPEST)
C_TEMPLATES = (C_CHEAPEST,)
