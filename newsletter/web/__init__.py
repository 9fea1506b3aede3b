"""The web pages of `newsletter serve`: members' pages (unsubscribe, sign-up)."""
