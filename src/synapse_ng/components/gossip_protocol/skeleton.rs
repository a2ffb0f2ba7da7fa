// gossip_protocol: choose the peers a node forwards a gossip message to.
//
// Fixed harness, except the EVOLVE block. When a node first receives a message it forwards it once, to
// the peers `choose_peers` picks. The host writes the node's n peers (latency ms, delivery probability,
// ms since last contact; the peer the message just came from has contact age 0) into the static arrays
// and calls select(n, fanout, seed). The chosen peer indices go to the output array; select returns how
// many. The host checks them: distinct, each in 0..n-1, at most fanout. Quality is the time until 99 %
// of the network holds the message (lower is better), in a simulation where each send arrives after the
// link's latency with the link's reliability as probability.

const MAX_PEERS: usize = 256;

static mut LATENCY: [f64; MAX_PEERS] = [0.0; MAX_PEERS];
static mut RELIABILITY: [f64; MAX_PEERS] = [0.0; MAX_PEERS];
static mut CONTACT_AGE: [f64; MAX_PEERS] = [0.0; MAX_PEERS];
static mut OUTPUT: [i32; MAX_PEERS] = [0; MAX_PEERS];

// EVOLVE-BLOCK-START
/// splitmix64: a small, good 64-bit generator (advances the state, returns the next number).
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Chooses up to `fanout` distinct peers among the n = latency.len() peers (the three slices have the
/// same length): writes their indices (0..n-1) to out[0..count] and returns count (0..=fanout).
/// latency[i]: ms for a message to reach peer i; reliability[i]: probability that it arrives at all;
/// contact_age[i]: ms since we last heard from peer i (0 for the peer we just got the message from).
/// `seed` is fixed per decision: use it for any randomness. `out` has MAX_PEERS slots.
/// Baseline: `fanout` peers uniformly at random (a partial Fisher-Yates shuffle driven by splitmix64).
fn choose_peers(
    latency: &[f64],
    reliability: &[f64],
    contact_age: &[f64],
    fanout: usize,
    seed: u64,
    out: &mut [i32],
) -> i32 {
    let _ = (reliability, contact_age);
    let n = latency.len();
    let k = if fanout < n { fanout } else { n };
    let mut order = [0i32; MAX_PEERS];
    for i in 0..n {
        order[i] = i as i32;
    }
    let mut state = seed;
    for i in 0..k {
        let j = i + (splitmix64(&mut state) % ((n - i) as u64)) as usize;
        order.swap(i, j);
        out[i] = order[i];
    }
    k as i32
}
// EVOLVE-BLOCK-END

// The arrays' addresses: the host writes the peers there and reads the choice.
#[rustfmt::skip]
#[no_mangle] pub extern "C" fn latency_ptr() -> i32 { unsafe { LATENCY.as_ptr() as i32 } }
#[rustfmt::skip]
#[no_mangle] pub extern "C" fn reliability_ptr() -> i32 { unsafe { RELIABILITY.as_ptr() as i32 } }
#[rustfmt::skip]
#[no_mangle] pub extern "C" fn contact_age_ptr() -> i32 { unsafe { CONTACT_AGE.as_ptr() as i32 } }
#[rustfmt::skip]
#[no_mangle] pub extern "C" fn output_ptr() -> i32 { unsafe { OUTPUT.as_ptr() as i32 } }

/// Returns the number of peers chosen, or -1 (negative count), -2 (count beyond the output buffer),
/// -3 (bad arguments).
#[no_mangle]
pub extern "C" fn select(n_peers: i32, fanout: i32, seed: i64) -> i32 {
    if n_peers < 0 || n_peers as usize > MAX_PEERS || fanout < 0 || fanout as usize > MAX_PEERS {
        return -3;
    }
    let n = n_peers as usize;
    let count = unsafe {
        choose_peers(
            &LATENCY[..n],
            &RELIABILITY[..n],
            &CONTACT_AGE[..n],
            fanout as usize,
            seed as u64,
            &mut OUTPUT[..],
        )
    };
    if count < 0 {
        return -1;
    }
    if count as usize > MAX_PEERS {
        return -2;
    }
    count
}
