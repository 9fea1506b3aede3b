"""The state database (the ledger): who got what, what they were told, unsubscribes, schema versions."""
