// Registers the agent console's browser test (tests/e2e/agents.mjs) with ctest.
await import('../e2e/agents.mjs');
