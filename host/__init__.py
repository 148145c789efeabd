"""Host-side software for the board builds: the UART bridge client."""
