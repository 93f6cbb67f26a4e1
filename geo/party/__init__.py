"""Party cells in pure form (DOMAIN §4): coverage checks and centre-household links."""
