"""Pages for people that need no account: the home page and the hosted quote form."""
