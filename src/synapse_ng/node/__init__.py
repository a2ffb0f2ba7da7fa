"""The node: one member of a synapse-ng network (identity, signed messages, the HTTP service, gossip).

    identity.py   the node's ed25519 key: created once (0600, atomically); its hex public key is the node id
    envelope.py   the signed message every replicated fact travels in; its id is the sha256 of what was signed
    config.py     NodeConfig: defaults, data_dir/node.json, and the keys a config_change may change
    state.py      the node's durable state in SQLite: signed messages, artifacts, members, version history
    ledger.py     what the stored messages say: members, proposals, decided outcomes, rollouts, the rules
    refusal.py    Refusal (an HTTP status and why) and Accepted: what every room answers
    admission.py  messages in: membership, signature, replay, body, clock, rules, quotas, rate
    transport.py  the calls to peers: one bounded request helper, each peer's proof of its key
    gossip.py     push on first receipt, anti-entropy pulls, which late votes the peers hold
    artifacts.py  the WASM modules: stored within bounds, fetched from peers, collected when unneeded
    voting.py     proposals and votes this node makes, outcomes, verification before a yes, applying
    rollouts.py   this node's part in a staged rollout, and rollbacks
    remedies.py   the immune system at work: measurements, config remedies, the Evolutionary Engine
    services.py   the components at work: allocation, gossip fan-out, the tally checked against the reference
    runtime.py    each component's live WASM versions, called in the sandbox
    membership.py the genesis members and the checks on a membership change
    peers.py, quotas.py, operator.py, metrics.py   link figures, message rate, operator token, Prometheus
    node.py       Node: the facade composing the rooms; Node.open does the I/O
    app.py        the HTTP API (FastAPI); its request bodies use governance.proposals' field types
    serve.py      run one node under uvicorn

Nothing outside this folder imports it (it sits on top of governance, upgrade and immune), and this
file imports nothing, so that `import synapse_ng.node.envelope` stays cheap.
"""
