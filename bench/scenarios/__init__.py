"""One module per scenario of issue 7; each has `run(run: Run) -> ScenarioResult`."""
