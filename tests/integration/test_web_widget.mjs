// Registers the web widget's browser test (tests/e2e/widget.mjs) with ctest.
await import('../e2e/widget.mjs');
