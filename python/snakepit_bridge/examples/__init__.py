"""Example adapters shipped with the bridge (used by the test suites and the sample app)."""
