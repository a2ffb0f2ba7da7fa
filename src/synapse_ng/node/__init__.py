"""The node: one member of a synapse-ng network (identity, signed messages, the HTTP service, gossip).

    identity.py   the node's ed25519 key: created once (0600, atomically); its hex public key is the node id
    envelope.py   the signed message every replicated fact travels in; its id is the sha256 of what was signed
    config.py     NodeConfig: defaults, data_dir/node.json, and the keys a config_change may change
    state.py      the node's durable state in SQLite: signed messages, artifacts, members, version history
    peers.py      per-peer link figures (latency, reliability) measured on the node's own calls
    runtime.py    the components at work: each component's live WASM version, called in the sandbox
    metrics.py    the node's Prometheus metrics, in a registry of its own
    node.py       Node: ties the above to governance, upgrade and immune
    app.py        the HTTP API (FastAPI)

Nothing outside this folder imports it (it sits on top of governance, upgrade and immune), and this
file imports nothing, so that `import synapse_ng.node.envelope` stays cheap.
"""
