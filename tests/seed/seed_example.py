import asyncio

from synapse_ng import (
    InefficencyType,
    Inefficiency,
    LLMProviderConfig,
    initialize_evolutionary_engine_manager,
)

llm_config = LLMProviderConfig(
    provider_name="ollama_local",
    model_name="codellama:7b",
    api_endpoint="http://localhost:11434/api/generate",
)

engine = initialize_evolutionary_engine_manager(llm_config=llm_config, workspace_dir="/tmp/synapse_evolution")

issue = Inefficiency(
    type=InefficencyType.CONSENSUS,
    description="Consensus time exceeds 5 seconds consistently",
    severity=0.8,
    current_metric=8.5,
    target_metric=3.0,
    affected_component="raft_consensus",
    suggested_improvement="Optimize Raft log replication with parallel consensus",
)


async def main():
    generated = await engine.generate_optimized_code(
        issue=issue, additional_context={"peer_count": 12, "network_latency_ms": 150, "log_size_mb": 45}
    )

    if generated and generated.wasm_binary:
        print(f"✓ Generated WASM: {len(generated.wasm_binary)} bytes")
        print(f"  Hash: {generated.wasm_hash}")
        print(f"  Est. improvement: {generated.estimated_improvement}%")


asyncio.run(main())
