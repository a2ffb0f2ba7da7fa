import asyncio

from synapse_ng import EvolutionaryEngineManager, InefficencyType, Inefficiency, LLMProviderConfig


async def test():
    # Configure LLM
    llm_config = LLMProviderConfig(
        provider_name="ollama_local",
        model_name="codellama:7b",
        api_endpoint="http://localhost:11434/api/generate",
    )

    # Initialize engine
    engine = EvolutionaryEngineManager(llm_config=llm_config)

    # Create test issue
    issue = Inefficiency(
        type=InefficencyType.CONSENSUS,
        description="Consensus exceeds 5s",
        severity=0.7,
        current_metric=8.0,
        target_metric=3.0,
        affected_component="raft_consensus",
        suggested_improvement="Optimize log replication",
    )

    # Generate code
    generated = await engine.generate_optimized_code(issue)

    if generated:
        print("✓ Success!")
        print(f"  Source: {len(generated.source_code)} chars")
        if generated.wasm_binary:
            print(f"  WASM: {len(generated.wasm_binary)} bytes")
            print(f"  Hash: {generated.wasm_hash}")
    else:
        print("✗ Failed")


asyncio.run(test())
