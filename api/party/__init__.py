"""Party cells (支部建在网格上): centre-household links, coverage checks, the party map."""
