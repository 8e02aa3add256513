"""Business rules and transactions; callable from views, tasks and the CLI alike."""
